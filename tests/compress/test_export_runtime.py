"""A pruned model exports to fp32 and int8 ONNX bundles and answers in the torch-free runtime."""
from __future__ import annotations

import numpy as np
import pytest

from edgesam.eval import mask_agreement
from edgesam.reference.predictor import SamReferencePredictor
from tests.tolerances import EXPORT_INT8_MASK_IOU_MIN, PRUNE_RUNTIME_LOGITS_ATOL

runtime = pytest.importorskip("edgesam_runtime")
export = pytest.importorskip("edgesam.export")


@pytest.fixture(scope="module")
def bundle(pruned_checkpoint, synth_dir, tmp_path_factory):
    path, _, _ = pruned_checkpoint
    out = tmp_path_factory.mktemp("pruned_bundle") / "bundle"
    config = export.ExportConfig(precisions=("fp32", "int8"), calib_data=str(synth_dir),
                                 calib_cache=str(tmp_path_factory.mktemp("calib_cache")))
    manifest = export.export_bundle(path, out, config, progress=False)
    return out, manifest


def _image():
    rng = np.random.default_rng(0)
    return (rng.random((80, 100)) * 255).astype(np.uint8)


BOXES = np.array([[10, 12, 60, 50], [30, 5, 95, 70]], np.float32)


def test_manifest_records_the_pruned_arch(bundle, pruned_checkpoint):
    _, manifest = bundle
    _, _, arch = pruned_checkpoint
    recorded = manifest["model"]["arch"]
    assert recorded["block_heads"] == list(arch.block_heads) and recorded["depth"] == arch.depth == 5


def test_fp32_runtime_matches_the_pruned_torch_model(bundle, pruned_checkpoint):
    out, _ = bundle
    _, model, _ = pruned_checkpoint
    seg = runtime.Segmenter.open(out, graph_set="fp32")
    result = seg.segment(seg.encode(_image()), boxes=BOXES)
    ref = SamReferencePredictor(model)
    ref.set_image(_image())
    expected = ref.predict(boxes=BOXES)
    assert result.masks.shape == expected.masks.shape == (2, 1, 80, 100)
    np.testing.assert_allclose(result.low_res_logits, expected.low_res_logits, atol=PRUNE_RUNTIME_LOGITS_ATOL, rtol=0)


def test_int8_runtime_runs_and_agrees_with_fp32(bundle):
    out, manifest = bundle
    assert "int8" in manifest["graphs"]
    fp32 = runtime.Segmenter.open(out, graph_set="fp32")
    int8 = runtime.Segmenter.open(out, graph_set="int8")
    a = fp32.segment(fp32.encode(_image()), boxes=BOXES)
    b = int8.segment(int8.encode(_image()), boxes=BOXES)
    assert b.masks.shape == a.masks.shape
    assert not np.array_equal(a.low_res_logits, b.low_res_logits)  # really quantized
    agreement = mask_agreement(b.masks[:, 0], a.masks[:, 0])
    assert agreement.to_dict()["reference_empty"] == 0  # the fp32 masks are real: the IoU means something
    assert agreement.mean_iou >= EXPORT_INT8_MASK_IOU_MIN
