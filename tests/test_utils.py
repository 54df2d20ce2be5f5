"""Shared helpers: YAML spec reading, atomic writes, status lines."""
import json

import pytest

from edgesam_runtime.files import atomic_path
from edgesam.utils.status import append_status
from edgesam_runtime.yamlio import read_yaml_mapping


def test_yaml_mapping_errors_name_the_file(tmp_path):
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ValueError, match=r"list.yaml: expected a mapping .* got list"):
        read_yaml_mapping(tmp_path / "list.yaml")
    with pytest.raises(KeyError, match="bad.yaml: not a readable YAML spec"):
        read_yaml_mapping(tmp_path / "bad.yaml", KeyError)
    with pytest.raises(ValueError, match="missing.yaml"):
        read_yaml_mapping(tmp_path / "missing.yaml")
    assert read_yaml_mapping(tmp_path / "empty.yaml") == {}


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_status_lines_are_strict_json(tmp_path):
    path = tmp_path / "status.jsonl"
    append_status(path, "finetune", "step", figures={"loss": float("nan"), "lr": [1e-3, float("inf")]}, init="random")
    append_status(path, "finetune", "done", "ok")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["figures"] == {"loss": None, "lr": [0.001, None]} and lines[0]["init"] == "random"
    assert [line["state"] for line in lines] == ["step", "done"]
