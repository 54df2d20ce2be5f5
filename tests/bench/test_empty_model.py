"""A model that outputs nothing cannot pass an IoU gate: `check --min-iou` fails naming the empty references,
the export-time parity gate refuses it, and `predict` says so for every mask."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgesam.cli.main import main
from tests.empty_masks import silence_mask_decoder


@pytest.fixture(scope="module")
def silent(tmp_path_factory):
    """A tiny vit_t whose every mask is empty, its checkpoint, and an fp32 bundle exported from it.

    The bundle is exported without the mask IoU tolerance (the export gate itself refuses such a
    model, see below), so that `check` is what is tested here.
    """
    import torch

    from edgesam.export import ExportConfig, export_bundle
    from edgesam.models import create_model, save_checkpoint
    from edgesam.models.registry import arch_for

    root = tmp_path_factory.mktemp("silent")
    torch.manual_seed(0)
    model = silence_mask_decoder(create_model("vit_t", image_size=64).eval())
    checkpoint = save_checkpoint(model, root / "silent.pth", arch_for("vit_t", 64))
    config = ExportConfig(precisions=("fp32",), tolerances={"fp32": {"mask_iou_min": None}})
    manifest = export_bundle(checkpoint, root / "bundle", config, progress=False)
    return {"checkpoint": checkpoint, "bundle": root / "bundle", "manifest": manifest, "root": root}


@pytest.mark.slow
def test_check_fails_on_a_model_that_outputs_nothing(silent, bench_setup, tmp_path):
    args = [silent["bundle"], "--data", bench_setup["data"], "--reference", silent["checkpoint"], "--max-images", 3,
            "--torch-fast", "off", "--threads", 1, "--out", tmp_path, "--min-iou", 0.97, "--backends", "auto"]
    result = CliRunner().invoke(main, ["check", *map(str, args)], catch_exceptions=False)
    assert result.exit_code == 1
    report = json.loads((tmp_path / "bench.json").read_text())
    fp32 = {row["format"]: row for row in report["formats"]}["fp32"]
    n = report["prompts"]
    assert fp32["empty"]["reference"] == fp32["empty"]["both"] == n >= 3 and fp32["iou_vs_reference"]["mean"] is None
    assert fp32["task_iou"]["mean"] == 0.0  # beside the reference IoU: the ground truth says "nothing found"
    first = fp32["empty"]["empty_references"][0]
    assert f"FLOOR MISSED: fp32: {n} of {n} reference masks are empty (the reference outputs nothing: {first}" \
        in result.output
    assert f"{n}/{n} !" in result.output  # the table flags the empty masks


def test_export_parity_refuses_an_empty_model_naming_the_masks(silent):
    from edgesam.export import checks
    from edgesam.export.config import DEFAULT_TOLERANCES

    figures = silent["manifest"]["checks"]["fp32"]  # measured on the exported graphs
    assert figures["reference_empty"] == figures["both_empty"] == figures["num_masks"] > 0
    assert figures["mask_iou_mean"] is None
    n = figures["num_masks"]
    with pytest.raises(checks.ParityError, match=rf"{n} of {n} reference masks are empty \(the reference outputs "
                                                 r"nothing: no mask input/prompt set 0/output 0"):
        checks.enforce(figures, DEFAULT_TOLERANCES["fp32"], "fp32", ("encoder.onnx", "decoder.onnx"))


def test_predict_warns_for_each_empty_mask(silent, tmp_path):
    from PIL import Image

    Image.fromarray(np.full((40, 60), 128, np.uint8)).save(tmp_path / "part.png")
    for source in (["--checkpoint", silent["checkpoint"]], ["--bundle", silent["bundle"]]):
        out = tmp_path / source[0].strip("-")
        result = CliRunner().invoke(main, ["predict", str(tmp_path / "part.png"), *map(str, source), "--box", "5,5,30,20",
                                           "--box", "10,10,50,35", "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert "warning: prompt set 0 (box 5,5,30,20): empty mask" in result.output
        assert "warning: prompt set 1 (box 10,10,50,35): empty mask" in result.output
        record = json.loads((out / "part.json").read_text())
        assert record["empty_masks"] == [[True], [True]] and len(record["warnings"]) == 2
