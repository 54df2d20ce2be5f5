"""TensorRT engines through the runtime (skipped without tensorrt + CUDA), and the manifest contract."""
from __future__ import annotations

import numpy as np
import pytest

from edgesam_runtime.backends.trt import recorded_versions


class _Info:
    def __init__(self, manifest):
        self.manifest = manifest

    def entry(self, part):
        return self.manifest["graphs"]["trt_fp32"][part]


def test_recorded_versions_read_the_exporter_entry():
    entry = {"tensorrt": {"tensorrt_version": "10.3.0", "compute_capability": "8.9", "gpu": "L4"}}
    info = _Info({"graphs": {"trt_fp32": {"encoder": entry, "decoder": {}}}, "versions": {"tensorrt": "10.1.0"}})
    assert recorded_versions(info, "encoder") == {"version": "10.3.0", "compute_capability": "8.9"}
    assert recorded_versions(info, "decoder") == {"version": "10.1.0", "compute_capability": None}


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_trt_engine_matches_onnxruntime(tiny_model, tmp_path, make_image):
    pytest.importorskip("tensorrt")
    pytest.importorskip("cupy")
    from edgesam.export import ExportConfig, export_bundle
    from edgesam_runtime import Segmenter
    from tests.tolerances import RUNTIME_TRT_FP32_LOGITS_ATOL

    bundle = tmp_path / "bundle"
    export_bundle(tiny_model, bundle, ExportConfig(formats=("onnx", "engine"), precisions=("fp32",)), progress=False)
    ort_seg = Segmenter.open(bundle, "fp32", providers=["CPUExecutionProvider"])
    trt_seg = Segmenter.open(bundle, "trt_fp32")
    image = make_image()
    boxes = [[10, 10, 80, 60], [40, 20, 130, 85]]
    a = ort_seg.segment(ort_seg.encode(image), boxes=boxes)
    b = trt_seg.segment(trt_seg.encode(image), boxes=boxes)
    assert np.abs(a.low_res_logits - b.low_res_logits).max() <= RUNTIME_TRT_FP32_LOGITS_ATOL
