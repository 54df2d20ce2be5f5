"""A model with a mask refiner: exported with its refiner graph, opened with no extra flags, and its masks
drawn on the refiner's grid match the PyTorch reference (and differ from the decoder's own masks)."""
from __future__ import annotations

import numpy as np
import pytest

from edgesam_runtime import roi
from tests.tolerances import RUNTIME_LOGITS_ATOL

pytestmark = pytest.mark.slow  # long integration tests: CI runs them (`pytest -m slow`)

FRAMING = roi.InputFraming(mode="roi", roi_margin=1.5, dense_box=True)
BOXES = np.array([[10, 10, 40, 50], [60, 20, 135, 85], [100, 70, 139, 89]], np.float32)


def _perturbed_refiner_model(framing):
    """A tiny model whose refiner is not the identity (a fresh refiner's residual is zero: proves nothing)."""
    import torch

    from edgesam.models import arch_for, build_sam

    torch.manual_seed(0)
    arch = roi.with_refiner(roi.with_framing(arch_for("vit_t", 64), framing), roi.RefineSpec(stride=1, width=48))
    model = build_sam(arch)
    with torch.no_grad():
        model.mask_refiner.head.weight.normal_(0, 0.5)
        model.mask_refiner.head.bias.fill_(0.3)
    return model, arch


@pytest.fixture(scope="module", params=["roi", "image"])
def refined(request, tmp_path_factory):
    from edgesam.export import ExportConfig, export_bundle
    from edgesam.models import save_checkpoint

    framing = FRAMING if request.param == "roi" else roi.InputFraming(mode="image", dense_box=True)
    model, arch = _perturbed_refiner_model(framing)
    folder = tmp_path_factory.mktemp(f"refined-{request.param}")
    save_checkpoint(model, folder / "model.pth", arch)
    manifest = export_bundle(folder / "model.pth", folder / "bundle", ExportConfig(precisions=("fp32", "int8"),
                                                                                     int8_mode="dynamic"),
                             progress=False)
    return folder, manifest


def test_manifest_records_the_refiner_and_its_parity(refined):
    _, manifest = refined
    assert manifest["model"]["refine"] == {"stride": 1, "width": 48} and manifest["model"]["mask_grid"] == 64
    assert manifest["refiner"]["grid"] == 64 and manifest["refiner"]["file"] == "refiner.onnx"
    check = manifest["checks"]["refiner"]
    assert check["num_masks"] == 3 and check["reference_empty"] < 3
    assert check["logits_max_abs"] <= RUNTIME_LOGITS_ATOL


@pytest.mark.parametrize("graph_set", ["fp32", "int8"])
def test_runtime_draws_masks_on_the_refiner_grid_like_the_reference(refined, graph_set, make_image):
    from edgesam.models import create_model
    from edgesam.reference.predictor import SamReferencePredictor
    from edgesam_runtime import Segmenter

    folder, _ = refined
    image = make_image()
    model = create_model(checkpoint=folder / "model.pth")
    reference = SamReferencePredictor(model)
    reference.set_image(image)
    expected = reference.predict(boxes=BOXES)
    seg = Segmenter.open(folder / "bundle", graph_set, threads=1)
    assert seg.refiner is not None
    result = seg.segment(seg.encode(image), boxes=BOXES)
    areas = expected.masks.reshape(len(BOXES), -1).sum(1)
    assert (areas > 0).all(), f"reference masks must not be empty to compare: areas {areas}"
    inter = (result.masks & expected.masks).reshape(len(BOXES), -1).sum(1)
    union = (result.masks | expected.masks).reshape(len(BOXES), -1).sum(1)
    assert (inter / union).min() >= (0.99 if graph_set == "fp32" else 0.9)
    assert "refiner_ms" in result.timings
    # the refiner changed the masks: the decoder's own grid draws something else
    framing = model.framing
    if framing.roi:
        windows = roi.crop_windows(BOXES, framing.roi_margin, framing.roi_min_side)
        coarse = roi.paste_masks(expected.low_res_logits, windows, image.shape, model.image_encoder.img_size)
    else:
        from edgesam_runtime import geometry

        coarse = geometry.upscale_masks(expected.low_res_logits, image.shape, model.image_encoder.img_size)
    assert (coarse != expected.masks).sum() > 0.01 * expected.masks.size


def test_beside_openvino_the_refiner_runs_on_openvino_with_onnxruntime_s_masks(refined, make_image):
    from edgesam_runtime import Segmenter
    from edgesam_runtime.backends.ov import OvListGraph, available

    if not available():
        pytest.skip("openvino is not installed")
    folder, _ = refined
    image = make_image()
    reference = Segmenter.open(folder / "bundle", "fp32", backend="onnxruntime", threads=1, warmup=False)
    seg = Segmenter.open(folder / "bundle", "fp32", backend="openvino", threads=1, warmup=False)
    assert isinstance(seg.refiner, OvListGraph) and seg.refiner.execution_precision == "fp32"
    want = reference.segment(reference.encode(image), boxes=BOXES).masks
    got = seg.segment(seg.encode(image), boxes=BOXES).masks
    assert want.reshape(len(BOXES), -1).any(1).all()  # non-empty masks: the comparison means something
    inter = (want & got).reshape(len(BOXES), -1).sum(1)
    union = (want | got).reshape(len(BOXES), -1).sum(1)
    assert (inter / union).min() >= 0.99
    assert seg.refiner._static and None not in seg.refiner._static.values()  # the refiner ran on its static copy
    assert np.array_equal(seg.segment(seg.encode(image), boxes=BOXES).masks, got)  # and answers alike every time


def test_a_tampered_refiner_graph_is_refused(refined, tmp_path):
    import shutil

    from edgesam_runtime import BundleError, Segmenter

    folder, _ = refined
    copy = tmp_path / "bundle"
    shutil.copytree(folder / "bundle", copy)
    with open(copy / "refiner.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match="refiner"):
        Segmenter.open(copy, threads=1)


def test_export_cli_reports_the_refiner_check(refined):
    from click.testing import CliRunner

    from edgesam.cli.main import main

    folder, _ = refined
    out = folder / "bundle-cli"
    result = CliRunner().invoke(main, ["export", "--checkpoint", str(folder / "model.pth"), "--out", str(out),
                                      "--precision", "fp32", "--quiet"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "logits max|d|" in lines["refiner"] and "mask IoU" in lines["refiner"]
    assert "embeddings max|d|" in lines["fp32"]
