"""ONNX int8 modes: dynamic needs no calibration images and quantizes the MatMul weights; the config
says which mode and which images each format needs."""
from __future__ import annotations

import onnx
import pytest

from edgesam.export import ExportConfig, export_bundle
from edgesam.utils.config import ConfigError
from tests.tolerances import EXPORT_INT8_MASK_IOU_MIN


@pytest.mark.slow
def test_dynamic_int8_without_calibration_images(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr("edgesam.export.config.default_calibration_dir", lambda: tmp_path / "nowhere")
    model, arch = tiny_model
    out = tmp_path / "bundle"
    manifest = export_bundle(model, out, ExportConfig(precisions=("fp32", "int8"), int8_mode="dynamic"), arch=arch,
                             progress=False)
    q = manifest["quantization"]["int8"]
    assert q["mode"] == "dynamic" and q["calibration"] is None
    ops = [n.op_type for n in onnx.load(str(out / "encoder.int8.onnx")).graph.node]
    integer = ops.count("MatMulInteger") + ops.count("DynamicQuantizeMatMul")
    assert integer == q["encoder"]["matmul_integer"] >= 6 * 4  # vit_t: 6 blocks x 4 Linear layers
    excluded = q["excluded_nodes"]["encoder"]
    assert all("/neck/" in n or "/patch_embed/" in n for n in excluded)  # vit_t: its neck and stem are Convs
    assert manifest["checks"]["int8"]["mask_iou_mean"] >= EXPORT_INT8_MASK_IOU_MIN
    assert manifest["checks"]["int8"]["embed_max_abs"] > 100 * manifest["checks"]["fp32"]["embed_max_abs"]


def test_modes_formats_and_calibration_needs():
    assert ExportConfig(precisions=("int8",), formats=("onnx", "engine")).onnx_int8_mode == "static"
    with pytest.raises(ConfigError, match="TensorRT engines need the static"):
        ExportConfig(precisions=("int8",), formats=("engine",), int8_mode="dynamic")
    assert not ExportConfig(precisions=("int8",), int8_mode="dynamic").needs_calibration
    assert ExportConfig(precisions=("int8",), int8_mode="static").needs_calibration
    assert ExportConfig(formats=("openvino",), precisions=("int8",), int8_mode="dynamic").needs_calibration  # NNCF
    with pytest.raises(ConfigError, match="int8_mode"):
        ExportConfig(int8_mode="fast")
    with pytest.raises(ConfigError, match="overflow_fix"):
        ExportConfig(openvino_int8_overflow_fix="sometimes")


def test_nncf_smooth_quant_and_bias_correction_can_be_turned_off():
    """The two NNCF steps that cost most of vit_b's calibration memory (results/nncf_knobs.md) reach
    nncf.quantize's advanced parameters when a config turns them off; by default NNCF's own choice stands."""
    pytest.importorskip("nncf")
    from edgesam.export.openvino import _advanced

    default = _advanced(ExportConfig())
    assert default.disable_bias_correction is False and default.smooth_quant_alphas.matmul >= 0
    lean = _advanced(ExportConfig(openvino_int8_smooth_quant=False, openvino_int8_bias_correction=False))
    assert lean.disable_bias_correction is True and lean.smooth_quant_alphas.matmul < 0
    with pytest.raises(ConfigError, match="openvino_int8_smooth_quant"):
        ExportConfig(openvino_int8_smooth_quant="no")
