"""Which backend runs a graph set when the caller asks for backend="auto", and why.

The first rule that applies decides:

1. The graph set's format has one backend: TensorRT engines -> tensorrt, OpenVINO IR -> openvino.
2. ONNX graphs with explicit `providers`: onnxruntime (the caller chose its execution providers).
3. ONNX Runtime has a GPU provider (CUDA, TensorRT): onnxruntime, since any GPU beats a CPU backend.
4. OpenVINO is not installed: onnxruntime.
5. The manifest holds encoder timings of both backends for this graph set, measured on a CPU of the
   same model and flags as this one (`edgesam export --measure-backends`): the faster one. A
   measurement on this very CPU beats any rule.
6. No measurement for this CPU: the rule `RULE` below, from side-by-side measurements of SAM
   encoders on both backends (benchmarks/cpu_backends): ONNX Runtime's QDQ int8 kernels lag
   OpenVINO's on every x86 CPU measured, while for float graphs the two are close and ONNX Runtime
   is the reference path the bundle's parity checks ran on, so it keeps them.
"""
from __future__ import annotations

from edgesam.envinfo import cpu_features

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
RULE = {"int8": "openvino"}  # ONNX precision -> backend; precisions not listed run on onnxruntime


def same_cpu(recorded: dict | None, here: dict) -> bool:
    """A timing transfers only to the same CPU model with the same instruction-set flags."""
    if not recorded:
        return False
    return recorded.get("model") == here.get("model") and recorded.get("flags") == here.get("flags")


def measured_choice(manifest: dict, graph_set: str, installed: set[str], cpu: dict) -> tuple[str, str] | None:
    """(backend, reason) from the manifest's backend timings for this CPU, else None."""
    record = manifest.get("backend_timings") or {}
    if not same_cpu(record.get("cpu"), cpu):
        return None
    timings = {name: figures.get("encoder_ms") for name, figures in (record.get("graph_sets", {}).get(graph_set) or {}).items()
               if name in installed and isinstance(figures, dict) and figures.get("encoder_ms")}
    if len(timings) < 2:
        return None
    best = min(timings, key=timings.get)
    shown = ", ".join(f"{name} {ms:.0f} ms" for name, ms in sorted(timings.items()))
    return best, f"fastest encoder measured on this CPU model ({shown}; manifest backend_timings)"


def choose_backend(manifest: dict, graph_set: str, fmt: str, providers=None, installed: set[str] | None = None,
                   ort_providers=(), cpu: dict | None = None) -> tuple[str, str]:
    """(backend name, one-line reason) for backend='auto'."""
    if fmt == "tensorrt":
        return "tensorrt", "TensorRT engines run only on TensorRT"
    if fmt == "openvino":
        return "openvino", "OpenVINO IR runs only on OpenVINO"
    if providers:
        return "onnxruntime", "execution providers were given"
    gpu = [p for p in GPU_PROVIDERS if p in ort_providers]
    if gpu:
        return "onnxruntime", f"ONNX Runtime has a GPU provider ({gpu[0]})"
    installed = installed if installed is not None else {"onnxruntime"}
    if "openvino" not in installed:
        return "onnxruntime", "OpenVINO is not installed"
    cpu = cpu or cpu_features()
    measured = measured_choice(manifest, graph_set, installed, cpu)
    if measured:
        return measured
    precision = manifest["graphs"][graph_set]["encoder"].get("precision", graph_set)
    backend = RULE.get(precision, "onnxruntime")
    return backend, f"rule for {precision} ONNX graphs without a measurement on this CPU ({cpu.get('isa')})"
