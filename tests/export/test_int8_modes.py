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


def test_nncf_smooth_quant_and_bias_correction_are_off_by_default_and_can_be_turned_on():
    """The two NNCF steps that cost most of vit_b's calibration memory and generalised worst
    (results/nncf_knobs.md) are off by default; a config that turns them on reaches nncf.quantize."""
    pytest.importorskip("nncf")
    from edgesam.export.openvino import _advanced

    lean = _advanced(ExportConfig())
    assert lean.disable_bias_correction is True and lean.smooth_quant_alphas.matmul < 0
    full = _advanced(ExportConfig(openvino_int8_smooth_quant=True, openvino_int8_bias_correction=True))
    assert full.disable_bias_correction is False and full.smooth_quant_alphas.matmul >= 0
    with pytest.raises(ConfigError, match="openvino_int8_smooth_quant"):
        ExportConfig(openvino_int8_smooth_quant="no")


def test_openvino_int8_keeps_attention_matmuls_float_by_default(tiny_model, tmp_path):
    """Attention MatMuls (both inputs activations) go into NNCF's ignored scope unless the config asks for them
    in int8; weight MatMuls never do."""
    pytest.importorskip("nncf")
    ov = pytest.importorskip("openvino")
    from edgesam.export.onnx_export import export_encoder
    from edgesam.export.openvino import attention_matmuls, ignored_scope

    export_encoder(tiny_model[0], tmp_path / "encoder.onnx")
    model = ov.convert_model(str(tmp_path / "encoder.onnx"))
    attention = attention_matmuls(model)
    matmuls = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "MatMul"]
    assert attention and set(attention) < set(matmuls)
    _, record = ignored_scope(model, ExportConfig())
    assert record["names"] == attention
    _, record = ignored_scope(model, ExportConfig(openvino_int8_attention_float=False))
    assert record["names"] == []
