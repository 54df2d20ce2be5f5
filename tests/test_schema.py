"""edgesam_runtime.schema: the one reader of JSON/YAML files: size, encoding, numbers, depth, bombs, schemas, paths."""
from __future__ import annotations

import json

import pytest

from edgesam_runtime import schema
from edgesam_runtime.schema import SchemaError


def _file(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


@pytest.mark.parametrize("name, text, message", [
    ("nan.json", '{"a": NaN}', "NaN is not a number JSON allows"),
    ("huge.json", '{"a": 1e999}', "out of range"),
    ("digits.json", '{"a": ' + "9" * 5000 + "}", "not valid JSON"),
    ("deep.json", "[" * 50 + "]" * 50, "nested deeper than 32"),
    ("deeper.json", "[" * 100000 + "]" * 100000, "nested deeper than 32"),
    ("latin.json", b'{"a": "caf\xe9"}', "not UTF-8"),
    ("nan.yaml", "lr: .nan\n", r"field lr: nan is not a finite number"),
    ("inf.yaml", "a: {b: [1, -.inf]}\n", r"field a.b\[1\]: -inf is not a finite number"),
    # a repeated key would silently drop the first entry's fields (a rules file's limits, a spec's epochs)
    ("repeated.yaml", "classes:\n  crack: {max_area_px: 100}\n  crack: {max_count: 5}\n", "field 'crack' given twice"),
    ("repeated.json", '{"boxes": [], "boxes": [[1, 2, 3, 4]]}', "field 'boxes' given twice"),
    pytest.param("bomb.yaml", "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)), "bomb",
        marks=pytest.mark.slow),  # refused, but only after seconds of expansion
])
def test_malformed_files_are_one_error_naming_the_file(tmp_path, name, text, message):
    path = _file(tmp_path, name, text)
    load = schema.load_yaml if name.endswith(".yaml") else schema.load_json
    with pytest.raises(SchemaError, match=message) as info:
        load(path)
    assert str(info.value).startswith(str(path))


def test_too_large_a_file_is_refused_before_it_is_read(tmp_path):
    path = _file(tmp_path, "big.json", "[" + "0," * 1000 + "0]")
    with pytest.raises(SchemaError, match="expected at most 100"):
        schema.load_json(path, max_bytes=100)


def test_schema_errors_name_the_field(tmp_path):
    arch = {"variant": "vit_t", "embed_dim": 192, "depth": 6, "num_heads": 3, "global_attn_indexes": [2, 5],
            "image_size": 64}
    schema.check(arch, "arch", "x")
    with pytest.raises(SchemaError, match=r"^ckpt: field image_size: 131072 is greater than the maximum of 4096"):
        schema.check({**arch, "image_size": 131072}, "arch", "ckpt")
    with pytest.raises(SchemaError, match=r"field global_attn_indexes\[1\]: 'x' is not of type 'integer'"):
        schema.check({**arch, "global_attn_indexes": [2, "x"]}, "arch", "ckpt")
    path = _file(tmp_path, "prompts.json", json.dumps({"type": "box"}))
    with pytest.raises(SchemaError, match=r"prompts.json: field \(top level\): .* is not of type 'array'"):
        schema.load_json(path, "prompts")


def test_paths_must_stay_inside_their_folder(tmp_path):
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "ok.onnx").write_bytes(b"x")
    (tmp_path / "secret").write_bytes(b"x")
    (tmp_path / "bundle" / "out.onnx").symlink_to(tmp_path / "secret")
    (tmp_path / "bundle" / "in.onnx").symlink_to(tmp_path / "bundle" / "ok.onnx")
    assert schema.inside_folder(tmp_path / "bundle", "ok.onnx", "w") == tmp_path / "bundle" / "ok.onnx"
    assert schema.inside_folder(tmp_path / "bundle", "in.onnx", "w") == tmp_path / "bundle" / "in.onnx"
    for name, message in (("../secret", "leads outside"), ("out.onnx", "leads outside"),
                          (str(tmp_path / "secret"), "absolute path"), ("", "expected a file name")):
        with pytest.raises(SchemaError, match=message):
            schema.inside_folder(tmp_path / "bundle", name, "graphs.fp32.encoder.file")


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    """`<<:` merges a mapping whose keys the explicit ones override, as YAML allows: not a repeated key."""
    path = _file(tmp_path, "merge.yaml", "base: &b {a: 1, b: 2}\nx:\n  <<: *b\n  a: 3\n")
    assert schema.load_yaml(path)["x"] == {"a": 3, "b": 2}
