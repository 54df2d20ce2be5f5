"""A ROI-framed bundle on OpenVINO: the encoder takes a batch of crops (one per box) and the decoder
pairs each crop's embedding with its box, through the ONNX graphs and through the OpenVINO IR."""
from __future__ import annotations

import numpy as np
import pytest

from tests.runtime.test_roi_bundle import BOXES, FRAMING, roi_checkpoint  # noqa: F401 (a fixture)
from tests.tolerances import RUNTIME_LOGITS_ATOL

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def roi_ov_bundle(roi_checkpoint):  # noqa: F811
    from edgesam.export import ExportConfig, export_bundle

    out = roi_checkpoint.parent / "ov_bundle"
    manifest = export_bundle(roi_checkpoint, out, ExportConfig(formats=("onnx", "openvino"), precisions=("fp32",)),
                             progress=False)
    assert manifest["model"]["framing"] == FRAMING.to_dict()
    # the IR set was checked at export through OpenVINO on three crops, as the ONNX set was
    assert manifest["checks"]["ov_fp32"]["num_masks"] == manifest["checks"]["fp32"]["num_masks"] == 3
    return out


def _batches(backend):
    """Record the batch of every encoder call the backend makes."""
    seen, run = [], backend.run_encoder

    def recording(x):
        seen.append(x.shape[0])
        return run(x)

    backend.run_encoder = recording
    return seen


@pytest.mark.parametrize("graph_set", ["fp32", "ov_fp32"])
def test_openvino_encodes_one_crop_per_box_and_matches_onnxruntime(roi_ov_bundle, graph_set, make_image):
    from edgesam.runtime import Segmenter

    image = make_image()
    expected = Segmenter.open(roi_ov_bundle, "fp32", backend="onnxruntime", threads=1).segment(
        Segmenter.open(roi_ov_bundle, "fp32", backend="onnxruntime", threads=1, warmup=False).encode(image), boxes=BOXES)
    seg = Segmenter.open(roi_ov_bundle, graph_set, backend="openvino", threads=1)
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
