"""Streaming MinMax calibration: the same ranges as onnxruntime's calibrator, from reductions only."""
from __future__ import annotations

import pytest
from pathlib import Path

import numpy as np
import onnx

from edgesam.export.calibration import (
    ImageCalibrationReader, add_range_outputs, calibration_tensors, resolve_calibration_images, stream_minmax_ranges,
)
from edgesam.export.quantize import pre_process

OP_TYPES = ("MatMul", "Conv", "Gemm")


@pytest.mark.slow
def test_streamed_ranges_equal_onnxruntime_minmax(fp32_bundle, calib_dir, tmp_path):
    from onnxruntime.quantization.calibrate import create_calibrator

    out, _ = fp32_bundle
    prepared = tmp_path / "prepared.onnx"
    pre_process(out / "encoder.onnx", prepared, print)
    images = resolve_calibration_images(str(calib_dir), 5)
    ours = stream_minmax_ranges(prepared, OP_TYPES, ImageCalibrationReader(images, 64), tmp_path)
    theirs_cal = create_calibrator(prepared, list(OP_TYPES), augmented_model_path=str(tmp_path / "ort_aug.onnx"))
    theirs_cal.collect_data(ImageCalibrationReader(images, 64))
    theirs = theirs_cal.compute_data()
    assert set(ours.keys()) == set(theirs.keys()) and len(ours.keys()) > 50
    for name in ours.keys():
        np.testing.assert_allclose(ours[name].range_value, [np.ravel(v) for v in theirs[name].range_value], rtol=1e-6,
                                   atol=1e-7, err_msg=name)


def test_augmented_graph_returns_only_scalars(fp32_bundle):
    out, _ = fp32_bundle
    model = onnx.shape_inference.infer_shapes(onnx.load(str(out / "encoder.onnx")))
    tensors = calibration_tensors(model, OP_TYPES)
    weights = {t.name for t in model.graph.initializer}
    assert tensors and not set(tensors) & weights and "image" in tensors
    pairs = add_range_outputs(model, tensors)
    assert set(pairs) == set(tensors)
    assert all(not o.type.tensor_type.shape.dim for o in model.graph.output)  # scalars only
    assert len(model.graph.output) == 2 * len(tensors)
    # each reduction sits right after the node that makes its input (so the input can be freed early)
    position = {o: i for i, n in enumerate(model.graph.node) for o in n.output}
    for tensor, (lo, hi) in pairs.items():
        if tensor in position:
            assert position[lo] == position[tensor] + 1 and position[hi] == position[tensor] + 2
    onnx.checker.check_model(model)
