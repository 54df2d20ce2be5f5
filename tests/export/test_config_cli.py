"""ExportConfig validation, the CLI's flag handling, and `edgesam calib build`."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgesam.export import ExportConfig
from edgesam.utils.config import ConfigError


def test_aliases_are_canonical():
    cfg = ExportConfig(formats="onnx,trt", precisions=["half", "int8", "fp16"])
    assert cfg.formats == ("onnx", "engine") and cfg.precisions == ("fp16", "int8")
    assert ExportConfig(formats=("tensorrt",)).formats == ("onnx", "engine")  # engines need the ONNX graphs
    assert cfg.activation_type == "int8"  # TensorRT needs symmetric activations
    assert ExportConfig(precisions=("int8",)).activation_type == "uint8"  # ORT's fast x86 path
    assert cfg.max_prompt_points == 18


@pytest.mark.parametrize("kwargs,message", [
    ({"precisions": ("fp8",)}, "precisions: unknown value 'fp8'"),
    ({"formats": ("coreml",)}, "formats: unknown value 'coreml'"),
    ({"opset": 11}, "opset: expected 13..20, got 11"),
    ({"calib_method": "kl"}, "calib_method: expected one of"),
    ({"max_boxes": 0}, "max_boxes: expected an integer from 1 to 65536"),
    ({"max_boxes": 10**9}, "max_boxes: expected an integer from 1 to 65536"),  # was refused only after the export
    ({"max_points": 2048}, "max_points: expected an integer from 1 to 1024"),
    ({"decoder_style": "sam2"}, "decoder_style: expected one of"),
    ({"tolerances": {"int8": {"mask_iou": 0.9}}}, r"tolerances.int8: unknown \['mask_iou'\]"),
])
def test_bad_values_are_named(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ExportConfig(**kwargs)


def test_config_round_trips_and_merges_tolerances():
    cfg = ExportConfig(precisions=("fp32", "int8"), tolerances={"int8": {"mask_iou_min": 0.9}})
    assert cfg.tolerances["int8"]["mask_iou_min"] == 0.9 and cfg.tolerances["fp32"]["embed_max_abs"] == 1e-3
    assert ExportConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="unknown fields"):
        ExportConfig.from_dict({"precison": "fp16"})


def test_cli_flags_build_the_config(monkeypatch, tmp_path):
    from edgesam.cli import export as cli_export
    from edgesam.cli.main import main

    seen = {}

    def fake_export(model, out, config, arch=None, checkpoint_path=None, progress=True, overwrite=False):
        seen.update(config=config, arch=arch, out=out)
        return {"checks": {}, "graphs": {"fp32": {}}}

    monkeypatch.setattr("edgesam.export.run.export_bundle", fake_export)
    spec = tmp_path / "spec.yaml"
    spec.write_text("max_boxes: 8\ncalib_method: entropy\nopset: 16\n")
    result = CliRunner().invoke(main, [
        "export", "--model", "vit_t", "--image-size", "64", "--out", str(tmp_path / "b"), "-c", str(spec),
        "--precision", "fp32", "--half", "--int8", "--format", "onnx,tensorrt", "--opset", "17",
        "--int8-exclude-nodes", "/neck/,/blocks.0/",
    ])
    assert result.exit_code == 0, result.output
    cfg = seen["config"]
    assert cfg.precisions == ("fp32", "fp16", "int8") and cfg.formats == ("onnx", "engine")
    assert (cfg.max_boxes, cfg.calib_method, cfg.opset) == (8, "entropy", 17)  # flag beats the spec
    assert cfg.int8_exclude_nodes == ("/neck/", "/blocks.0/")
    assert seen["arch"].extra["init"] == "random" and "randomly initialised" in result.output
    assert cli_export is not None


def test_cli_errors_are_clear(tmp_path):
    from edgesam.cli.main import main

    runner = CliRunner()
    result = runner.invoke(main, ["export", "--model", "vit_t", "--out", str(tmp_path / "b"), "--precision", "fp12"])
    assert result.exit_code != 0 and "precisions: unknown value 'fp12'" in result.output
    result = runner.invoke(main, ["export", "--out", str(tmp_path / "b")])
    assert result.exit_code != 0 and "give --checkpoint" in result.output
    help_text = runner.invoke(main, ["export", "--help"]).output
    assert "Examples:" in help_text and "edgesam export --checkpoint merged.pth" in help_text
    assert "edgesam calib build" in runner.invoke(main, ["calib", "build", "--help"]).output


@pytest.mark.parametrize("size", ["0", "8", "131072", "100"])
def test_an_impossible_image_size_is_refused_not_replaced_by_the_default(tmp_path, size):
    from edgesam.cli.main import main

    result = CliRunner().invoke(main, ["export", "--model", "vit_t", "--image-size", size, "--out", str(tmp_path / "b")])
    assert result.exit_code == 1 and "Error: image_size: expected" in result.output, result.output
    assert not (tmp_path / "b").exists()


def test_calib_build_chooses_a_diverse_sample(tmp_path):
    from PIL import Image

    from edgesam.cli.main import main
    from edgesam.export.calib_select import describe, farthest_point_order

    src = tmp_path / "line"
    (src / "images").mkdir(parents=True)
    (src / "masks").mkdir()
    rng = np.random.default_rng(0)
    # 10 near-copies of a dark frame, one bright frame, one half-lit frame
    for i in range(10):
        Image.fromarray((40 + rng.integers(0, 4, (48, 64))).astype(np.uint8)).save(src / "images" / f"dark_{i}.png")
    Image.fromarray(np.full((48, 64), 220, np.uint8)).save(src / "images" / "bright.png")
    half = np.full((48, 64), 40, np.uint8)
    half[:, 32:] = 200
    Image.fromarray(half).save(src / "images" / "half.png")
    Image.fromarray(np.full((48, 64), 255, np.uint8)).save(src / "masks" / "dark_0.png")  # never a candidate
    result = CliRunner().invoke(main, ["calib", "build", str(src), str(tmp_path / "calib"), "--count", "3"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "calib" / "selection.json").read_text())
    chosen = sorted(f["source"].split("/")[-1] for f in summary["files"])
    assert summary["candidates"] == 12 and len(chosen) == 3
    assert "bright.png" in chosen and "half.png" in chosen and sum(c.startswith("dark") for c in chosen) == 1
    assert len(list((tmp_path / "calib").glob("*.png"))) == 3
    # a set built inside the source is not a source for the next build (its images are copies)
    inside = CliRunner().invoke(main, ["calib", "build", str(src), str(src / "calib"), "--count", "3"])
    again = CliRunner().invoke(main, ["calib", "build", str(src), str(src / "calib2"), "--count", "3"])
    assert inside.exit_code == again.exit_code == 0, inside.output + again.output
    summary = json.loads((src / "calib2" / "selection.json").read_text())
    assert summary["candidates"] == 12 and not any(f["source"].startswith("calib") for f in summary["files"])
    # farthest-point order: first the typical image, then the one farthest from it
    feats = np.stack([np.zeros(3), np.ones(3) * 0.1, np.ones(3) * 5.0])
    assert farthest_point_order(feats, 2) == [1, 2]
    assert describe(np.zeros((8, 8), np.uint8)).shape == (16 * 16 + 2 + 8,)
