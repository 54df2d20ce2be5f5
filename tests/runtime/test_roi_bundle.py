"""A ROI-framed model (a crop per box, dense box prompt): exported, opened with no extra flags, and
checked against the PyTorch reference's ROI path on the same weights."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edgesam_runtime import roi
from tests.tolerances import RUNTIME_LOGITS_ATOL

pytestmark = pytest.mark.slow  # long integration tests: CI runs them (`pytest -m slow`)

FRAMING = roi.InputFraming(mode="roi", roi_margin=2.0, dense_box=True)
BOXES = np.array([[10, 10, 40, 50], [60, 20, 135, 85], [0, 0, 6, 6], [100, 70, 139, 89]], np.float32)
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None


@pytest.fixture(scope="module")
def roi_checkpoint(tmp_path_factory):
    import torch

    from edgesam.models import arch_for, build_sam, save_checkpoint

    torch.manual_seed(0)
    arch = roi.with_framing(arch_for("vit_t", 64), FRAMING)
    path = tmp_path_factory.mktemp("roi") / "roi.pth"
    save_checkpoint(build_sam(arch), path, arch)
    return path


@pytest.fixture(scope="module")
def roi_bundle(roi_checkpoint):
    from edgesam.export import ExportConfig, export_bundle

    out = roi_checkpoint.parent / "bundle"
    formats = ("onnx", "openvino") if HAS_OPENVINO else ("onnx",)  # the IR set: see the OpenVINO test below
    manifest = export_bundle(roi_checkpoint, out, ExportConfig(formats=formats, precisions=("fp32",)), progress=False)
    assert manifest["model"]["framing"] == FRAMING.to_dict()
    # parity as the model is used: one round with its dense box prompt, its single-mask output, 3 boxes
    assert manifest["checks"]["fp32"]["num_masks"] == 3
    return out


def test_roi_bundle_segments_like_the_reference(roi_bundle, roi_checkpoint, make_image):
    from edgesam.models import create_model
    from edgesam.reference.predictor import SamReferencePredictor
    from edgesam_runtime import Segmenter

    image = make_image()
    reference = SamReferencePredictor(create_model(checkpoint=roi_checkpoint))
    assert reference.framing == FRAMING  # read from the checkpoint, not passed
    reference.set_image(image)
    expected = reference.predict(boxes=BOXES)
    seg = Segmenter.open(roi_bundle, threads=1)  # no framing flag: the manifest says it
    emb = seg.encode(image)
    assert emb.features is None and emb.frame.shape == image.shape + (3,)
    result = seg.segment(emb, boxes=BOXES)
    assert result.masks.shape == expected.masks.shape == (len(BOXES), 1) + image.shape
    areas = expected.masks.reshape(len(BOXES), -1).sum(1)
    assert (areas > 0).all(), f"reference masks must not be empty to compare: areas {areas}"
    assert np.abs(result.low_res_logits - expected.low_res_logits).max() <= RUNTIME_LOGITS_ATOL
    inter = (result.masks & expected.masks).reshape(len(BOXES), -1).sum(1)
    union = (result.masks | expected.masks).reshape(len(BOXES), -1).sum(1)
    assert (inter / union).min() >= 0.99
    assert {"encoder_ms", "decoder_ms", "postprocess_ms"} <= set(result.timings)


def test_roi_masks_stay_inside_each_window(roi_bundle, make_image):
    from edgesam_runtime import Segmenter

    seg = Segmenter.open(roi_bundle, threads=1)
    image = make_image()
    result = seg.segment(seg.encode(image), boxes=BOXES[:1])
    x0, y0, side = roi.crop_windows(BOXES[:1], FRAMING.roi_margin, FRAMING.roi_min_side)[0]
    outside = np.ones(image.shape, bool)
    outside[max(y0, 0):y0 + side, max(x0, 0):x0 + side] = False
    assert not result.masks[0, 0][outside].any()


def test_roi_bundle_refuses_points_without_a_box_and_stays_usable(roi_bundle, make_image):
    from edgesam_runtime import InvalidInputError, Segmenter

    seg = Segmenter.open(roi_bundle, threads=1)
    emb = seg.encode(make_image())
    with pytest.raises(InvalidInputError, match="box"):
        seg.segment(emb, points=[[20, 20]], labels=[1])
    with pytest.raises(InvalidInputError, match="mask_input"):
        seg.segment(emb, boxes=BOXES[:1], mask_input=np.zeros((1, 1, 16, 16), np.float32))
    assert seg.segment(emb, boxes=BOXES[:2]).masks.shape[0] == 2


def _batches(backend):
    """Record the batch of every encoder call the backend makes."""
    seen, run = [], backend.run_encoder

    def recording(x):
        seen.append(x.shape[0])
        return run(x)

    backend.run_encoder = recording
    return seen


@pytest.mark.skipif(not HAS_OPENVINO, reason="openvino not installed")
@pytest.mark.parametrize("graph_set", ["fp32", "ov_fp32"])
def test_openvino_encodes_one_crop_per_box_and_matches_onnxruntime(roi_bundle, graph_set, make_image):
    """OpenVINO, through the ONNX graphs and through the IR (checked at export through OpenVINO too):
    all crops in one encoder call, the decoder paired crop by crop, the same masks as ONNX Runtime."""
    from edgesam_runtime import Segmenter

    image = make_image()
    reference = Segmenter.open(roi_bundle, "fp32", backend="onnxruntime", threads=1, warmup=False)
    expected = reference.segment(reference.encode(image), boxes=BOXES)
    seg = Segmenter.open(roi_bundle, graph_set, backend="openvino", threads=1)
    batches = _batches(seg.backend)
    result = seg.segment(seg.encode(image), boxes=BOXES)
    assert batches == [len(BOXES)]  # all crops in one encoder call
    assert result.masks.shape == expected.masks.shape == (len(BOXES), 1) + image.shape
    areas = expected.masks.reshape(len(BOXES), -1).sum(1)
    assert (areas > 0).all(), f"reference masks must not be empty to compare: areas {areas}"
    assert np.abs(result.low_res_logits - expected.low_res_logits).max() <= 10 * RUNTIME_LOGITS_ATOL
    inter = (result.masks & expected.masks).reshape(len(BOXES), -1).sum(1)
    union = (result.masks | expected.masks).reshape(len(BOXES), -1).sum(1)
    assert (inter / union).min() >= 0.99
    one = seg.segment(seg.encode(image), boxes=BOXES[1:2])  # another batch size on the same compiled model
    assert batches[-1] == 1
    np.testing.assert_allclose(one.low_res_logits[0], result.low_res_logits[1], atol=10 * RUNTIME_LOGITS_ATOL)


def test_roi_masks_cropped_to_their_windows_equal_the_pasted_ones(roi_bundle, make_image):
    from edgesam_runtime import Segmenter

    seg = Segmenter.open(roi_bundle, threads=1, warmup=False)
    emb = seg.encode(make_image())
    full = seg.segment(emb, boxes=BOXES)
    cropped = seg.segment(emb, boxes=BOXES, crop=True)
    assert full.masks.any(), "some masks must be non-empty for the comparison to mean anything"
    np.testing.assert_array_equal(cropped.full_masks(), full.masks)
    windows = roi.crop_windows(BOXES, FRAMING.roi_margin, FRAMING.roi_min_side)
    for window, (x0, y0), (wx0, wy0, side) in zip(cropped.masks, cropped.offsets, windows):
        assert (x0, y0) == (max(wx0, 0), max(wy0, 0))  # the box's crop window, clipped to the frame
        assert window.shape[1] <= side and window.shape[2] <= side
