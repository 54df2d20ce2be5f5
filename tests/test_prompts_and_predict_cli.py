"""Prompt parsing (files and flags) and the `edgesam predict` command end to end on a small checkpoint."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from edgesam.cli.main import main
from edgesam.models import arch_for, build_sam, save_checkpoint
from edgesam_runtime.prompts import PromptError, from_flags, parse_prompt_list


def test_prompt_file_form_parses():
    p = parse_prompt_list([{"type": "point", "data": [3, 4], "label": 0}, {"type": "box", "data": [1, 2, 30, 40]}])
    assert p.points.tolist() == [[3, 4]] and p.labels.tolist() == [0] and p.boxes.tolist() == [[1, 2, 30, 40]]


@pytest.mark.parametrize("items, message", [
    ([{"type": "circle", "data": [1, 2]}], r"prompts\[0\].type: expected 'point' or 'box'"),
    ([{"type": "box", "data": [5, 5, 1, 9]}], r"prompts\[0\].data: expected x0 <= x1"),
    ([{"type": "point", "data": [1]}], r"prompts\[0\].data: expected 2 numbers"),
    ([{"type": "point", "data": [1, 2], "label": 3}], r"prompts\[0\].label"),
    ([{"type": "point", "data": [1, float("nan")]}], "finite"),
    ([], "at least one point or box"),
])
def test_bad_prompts_name_the_entry(items, message):
    with pytest.raises(PromptError, match=message):
        parse_prompt_list(items)


def test_flags_parse_and_bad_flag_is_named():
    p = from_flags(("10,20", "5,6,0"), ("1,2,3,4",))
    assert p.labels.tolist() == [1, 0] and p.boxes.shape == (1, 4)
    with pytest.raises(PromptError, match="--box"):
        from_flags((), ("1,2,x,4",))


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    arch = arch_for("vit_t", 128)
    return save_checkpoint(build_sam(arch), tmp_path_factory.mktemp("ck") / "small.pth", arch)


def test_predict_writes_mask_overlay_and_scores(small_checkpoint, tmp_path):
    image = np.zeros((90, 140), np.uint8)
    image[20:60, 30:100] = 200
    Image.fromarray(image).save(tmp_path / "part.png")
    prompt_file = tmp_path / "p.json"
    prompt_file.write_text(json.dumps([{"type": "box", "data": [25, 15, 105, 65]}, {"type": "box", "data": [0, 0, 20, 20]}]))
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "part.png"), "--checkpoint", str(small_checkpoint),
                                       "--prompts", str(prompt_file), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    mask = np.asarray(Image.open(tmp_path / "out/part_mask.png"))
    assert mask.shape == (90, 140) and set(np.unique(mask)) <= {0, 255}
    assert Image.open(tmp_path / "out/part_overlay.png").size == (140, 90)
    record = json.loads((tmp_path / "out/part.json").read_text())
    assert np.array(record["scores"]).shape == (2, 1) and record["variant"] == "vit_t"
    assert np.array(record["empty_masks"]).shape == (2, 1)
    assert record["warnings"] == [line for line in result.output.splitlines() if line.startswith("warning:")]


def test_predict_without_prompts_is_a_clear_error(small_checkpoint, tmp_path):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "a.png")
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "a.png"), "--checkpoint", str(small_checkpoint)])
    assert result.exit_code != 0 and "give --box, --point or --prompts" in result.output
