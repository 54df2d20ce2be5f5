"""backend="auto": the rules in order, each with the reason it gives."""
from __future__ import annotations

import pytest

from edgesam_runtime.backends.choice import choose_backend, openvino_precision, recommend, same_cpu

AVX2 = {"model": "AMD EPYC", "isa": "avx2", "flags": {"avx2": True, "avx512f": False}}
OTHER = {"model": "Intel Xeon", "isa": "amx", "flags": {"avx2": True, "avx512f": True}}
BOTH = {"onnxruntime", "openvino"}


def manifest(timings=None, cpu=AVX2):
    graphs = {name: {"encoder": {"precision": name}} for name in ("fp32", "fp16", "int8")}
    out = {"graphs": graphs}
    if timings:
        out["backend_timings"] = {"cpu": cpu, "graph_sets": timings}
    return out


def test_formats_with_one_backend_and_explicit_providers():
    assert choose_backend(manifest(), "fp32", "tensorrt")[0] == "tensorrt"
    assert choose_backend(manifest(), "ov_fp32", "openvino")[0] == "openvino"
    name, why = choose_backend(manifest(), "int8", "onnx", providers=["CPUExecutionProvider"], installed=BOTH, cpu=AVX2)
    assert name == "onnxruntime" and "providers" in why


def test_gpu_provider_and_missing_openvino_keep_onnxruntime():
    name, why = choose_backend(manifest(), "int8", "onnx", installed=BOTH, ort_providers=("CUDAExecutionProvider",), cpu=AVX2)
    assert name == "onnxruntime" and "GPU" in why
    name, why = choose_backend(manifest(), "int8", "onnx", installed={"onnxruntime"}, cpu=AVX2)
    assert name == "onnxruntime" and "not installed" in why


def test_a_measurement_on_the_same_cpu_decides():
    timings = {"fp32": {"onnxruntime": {"encoder_ms": 900.0}, "openvino": {"encoder_ms": 700.0}},
               "int8": {"onnxruntime": {"encoder_ms": 500.0}, "openvino": {"encoder_ms": 650.0}}}
    name, why = choose_backend(manifest(timings), "fp32", "onnx", installed=BOTH, cpu=AVX2)
    assert name == "openvino" and "measured on this CPU" in why and "700" in why
    assert choose_backend(manifest(timings), "int8", "onnx", installed=BOTH, cpu=AVX2)[0] == "onnxruntime"
    # measured elsewhere: the figures do not transfer, the rule decides
    name, why = choose_backend(manifest(timings, cpu=OTHER), "fp32", "onnx", installed=BOTH, cpu=AVX2)
    assert "rule" in why
    # a measurement of one backend only is no comparison
    one = {"fp32": {"onnxruntime": {"encoder_ms": 900.0}}}
    assert "rule" in choose_backend(manifest(one), "fp32", "onnx", installed=BOTH, cpu=AVX2)[1]


VNNI = {"model": "Intel Xeon", "isa": "avx512_vnni", "amx": False,
        "flags": {"avx2": True, "avx512f": True, "avx512_vnni": True}}


@pytest.mark.parametrize("precision, cpu, expected", [
    ("fp32", AVX2, "onnxruntime"), ("fp16", AVX2, "onnxruntime"), ("int8", AVX2, "onnxruntime"),
    ("fp32", VNNI, "onnxruntime"), ("int8", VNNI, "openvino"),
])
def test_the_rule_without_measurement(precision, cpu, expected):
    name, why = choose_backend(manifest(), precision, "onnx", installed=BOTH, cpu=cpu)
    assert name == expected and "rule" in why and cpu["isa"] in why


def test_same_cpu_needs_model_and_flags():
    assert same_cpu(AVX2, dict(AVX2))
    assert not same_cpu(AVX2, {**AVX2, "flags": {"avx2": True, "avx512f": True}})
    assert not same_cpu(None, AVX2)


AMX = {"model": "Intel Xeon", "isa": "amx", "amx": True,
       "flags": {"avx2": True, "avx512f": True, "avx512_vnni": True, "avx512_bf16": True, "amx_bf16": True}}


def _checked_bundle(ious: dict) -> dict:
    return {"graphs": {name: {} for name in ious}, "checks": {name: {"mask_iou_mean": iou} for name, iou in ious.items()}}


@pytest.mark.parametrize("cpu, ious, expected", [
    (AMX, {"fp32": 1.0, "int8": 0.98, "ov_fp32": 1.0, "ov_bf16": 0.99, "ov_int8": 0.98}, ("ov_int8", "openvino")),
    (AMX, {"fp32": 1.0, "ov_bf16": 0.99, "ov_int8": 0.92}, ("ov_bf16", "openvino")),  # int8 lost masks: bf16
    (VNNI, {"fp32": 1.0, "int8": 0.98, "ov_bf16": 0.99}, ("int8", "openvino")),  # no bf16 math: int8 first
    (AVX2, {"fp32": 1.0, "int8": 0.98, "ov_int8": 0.99, "ov_fp32": 1.0}, ("int8", "onnxruntime")),
    (AVX2, {"fp32": 1.0, "ov_fp32": 1.0}, ("fp32", "onnxruntime")),
])
def test_recommendation_follows_the_cpu_class_among_accurate_sets(cpu, ious, expected):
    graph_set, backend, why = recommend(_checked_bundle(ious), BOTH, cpu)
    assert (graph_set, backend) == expected and "export mask IoU >= 0.97" in why
    assert recommend(_checked_bundle({"fp32": 0.5}), BOTH, cpu) is None  # nothing accurate: no recommendation


def test_openvino_runs_int8_float_parts_in_bf16_and_float_sets_as_recorded():
    assert openvino_precision({"precision": "int8"}) == "bf16"  # fp32 where the CPU has no bf16 math (OpenVINO)
    assert openvino_precision({"precision": "fp32"}) == "fp32"
    assert openvino_precision({"precision": "int8", "openvino": {"inference_precision": "fp32"}}) == "fp32"
