"""Which backend runs a graph set when the caller asks for backend="auto", and why.

The first rule that applies decides:

1. The graph set's format has one backend: TensorRT engines -> tensorrt, OpenVINO IR -> openvino.
2. ONNX graphs with explicit `providers`: onnxruntime (the caller chose its execution providers).
3. ONNX Runtime has a GPU provider (CUDA, TensorRT): onnxruntime, since any GPU beats a CPU backend.
4. OpenVINO is not installed: onnxruntime.
5. The manifest holds encoder timings of both backends for this graph set, measured on a CPU of the
   same model and flags as this one (`edgesam export --measure-backends`): the faster one. A
   measurement on this very CPU beats any rule.
6. No measurement for this CPU: `rule_backend`. An int8 ONNX graph goes to OpenVINO only on a CPU
   with int8 dot-product instructions (VNNI or AMX), where OpenVINO turns the QDQ pairs into its own
   fused int8 kernels; everything else stays on ONNX Runtime, the path the bundle's parity checks
   ran on (on this project's AVX2-only machine OpenVINO ran the ONNX sets slower than ONNX Runtime
   in every side-by-side smoke run, all on a loaded machine). A rule is a guess:
   `--measure-backends` at export, or `edgesam bench` on the line PC, replaces it with a measurement.

OpenVINO runs each graph in the precision its manifest entry records; an int8 graph's float parts
(what quantization left float) in bf16 (`openvino_precision`): on a CPU with bf16 math that halves
their cost, elsewhere OpenVINO runs them in fp32, as before.

Which graph set to run (`recommend`) follows the CPU class, among the sets whose export check met
the accuracy bar (mask IoU against PyTorch >= RECOMMEND_MIN_IOU), because each class has different
fast kernels:

- bf16 math (AVX512_BF16 or AMX-BF16): int8 on OpenVINO with bf16 float parts, then OpenVINO bf16,
  then fp32 on OpenVINO (measured on a Xeon with AMX and on a 2-core EPYC with AVX512_BF16, vit_b:
  benchmarks/cpu_backends);
- int8 dot products without bf16 (VNNI): int8 on OpenVINO, then fp32 on OpenVINO;
- AVX2 only: int8 on ONNX Runtime (its u8s8 kernels with 7-bit weights; OpenVINO's int8 gained
  least there), then fp32. This class was not measured by the run that wrote these rules: it
  follows the same order of kernels (int8 before float, the backend whose int8 path the CPU has).
"""
from __future__ import annotations

from edgesam_runtime.envinfo import cpu_features, has_bf16_math, has_int8_dot

GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
# Which backends can run each graph format (OpenVINO reads ONNX too).
FORMAT_BACKENDS = {"onnx": ("onnxruntime", "openvino"), "openvino": ("openvino",), "tensorrt": ("tensorrt",)}


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
    backend, why = rule_backend(precision, cpu)
    return backend, f"rule for {precision} ONNX graphs without a measurement on this CPU ({cpu.get('isa')}): {why}"


def rule_backend(precision: str, cpu: dict) -> tuple[str, str]:
    """(backend, why) for an ONNX graph set of `precision` on `cpu` when nothing was measured."""
    from edgesam_runtime.envinfo import has_int8_dot

    if precision == "int8" and has_int8_dot(cpu):
        return "openvino", "with VNNI/AMX, OpenVINO runs QDQ int8 with its own fused int8 kernels"
    if precision == "int8":
        return "onnxruntime", "without VNNI/AMX, OpenVINO's int8 kernels have no dot-product instruction to gain from"
    return "onnxruntime", "float graphs stay on the backend the export's parity checks ran on"


def openvino_precision(entry: dict) -> str:
    """The inference precision OpenVINO runs a graph entry in: the one the manifest records (IR sets),
    else fp32 for float ONNX graphs (an fp32 set must mean fp32) and bf16 float parts for int8 ones
    (OpenVINO runs them in fp32 on a CPU without bf16 math)."""
    recorded = (entry.get("openvino") or {}).get("inference_precision")
    if recorded:
        return recorded
    return "bf16" if entry.get("precision") == "int8" else "fp32"


RECOMMEND_MIN_IOU = 0.97  # a set's export check (mask IoU against PyTorch) must reach this to be recommended
# CPU class -> (graph set, backend) in order of preference
PREFERENCE = {
    "bf16": (("ov_int8", "openvino"), ("int8", "openvino"), ("ov_bf16", "openvino"), ("ov_fp32", "openvino"),
             ("fp32", "openvino"), ("fp32", "onnxruntime")),
    "vnni": (("ov_int8", "openvino"), ("int8", "openvino"), ("ov_fp32", "openvino"), ("fp32", "openvino"),
             ("fp32", "onnxruntime")),
    "avx2": (("int8", "onnxruntime"), ("ov_int8", "openvino"), ("fp32", "onnxruntime"), ("ov_fp32", "openvino")),
}


def cpu_class(cpu: dict) -> str:
    """bf16 (AVX512_BF16 / AMX-BF16), vnni (int8 dot products, no bf16 math) or avx2 (neither)."""
    return "bf16" if has_bf16_math(cpu) else ("vnni" if has_int8_dot(cpu) else "avx2")


def recommend(manifest: dict, installed: set[str] | None = None, cpu: dict | None = None) -> tuple[str, str, str] | None:
    """(graph set, backend, why) to run on this CPU: the first of its class's PREFERENCE that the bundle
    holds, whose backend is installed and whose export check reached RECOMMEND_MIN_IOU; None if none."""
    cpu = cpu or cpu_features()
    installed = installed if installed is not None else {"onnxruntime"}
    checks = manifest.get("checks") or {}
    klass = cpu_class(cpu)
    for graph_set, backend in PREFERENCE[klass]:
        iou = (checks.get(graph_set) or {}).get("mask_iou_mean")
        if graph_set not in manifest.get("graphs", {}) or backend not in installed:
            continue
        if iou is None or iou < RECOMMEND_MIN_IOU:
            continue
        return graph_set, backend, (f"{klass} CPU ({cpu.get('isa')}): first of {', '.join(f'{g}@{b}' for g, b in PREFERENCE[klass])} "
                                    f"in the bundle with export mask IoU >= {RECOMMEND_MIN_IOU} ({iou:.3f})")
    return None


def installed_backends(fmt: str) -> set[str]:
    """The CPU backends of `fmt` whose packages import here (TensorRT is judged when it starts)."""
    if fmt != "onnx":
        return set(FORMAT_BACKENDS.get(fmt, ()))
    from edgesam_runtime.backends import ov as ov_backend

    return {"onnxruntime"} | ({"openvino"} if ov_backend.available() else set())


def graph_set_format(manifest: dict, graph_set: str) -> str:
    return manifest["graphs"][graph_set]["encoder"]["format"]


def auto_choice(manifest: dict, graph_set: str, providers=None) -> tuple[str, str]:
    """(backend, reason) that `Segmenter.open(bundle, graph_set, backend="auto")` takes on this machine."""
    fmt = graph_set_format(manifest, graph_set)
    ort_providers = ()
    if fmt == "onnx":
        from edgesam_runtime.backends.ort import _ort

        ort_providers = tuple(_ort().get_available_providers())
    return choose_backend(manifest, graph_set, fmt, providers, installed_backends(fmt), ort_providers)


def cpu_notes(cpu: dict | None = None) -> list[str]:
    """What this CPU's instruction set means for the graph sets (for bench headers)."""
    from edgesam_runtime.envinfo import has_bf16_math, has_int8_dot

    cpu = cpu or cpu_features()
    if cpu.get("isa") == "unknown":
        return ["CPU flags unknown (no /proc/cpuinfo): int8 and bf16 speed-ups cannot be predicted here"]
    notes = ["int8: VNNI/AMX present, int8 dot products in one instruction" if has_int8_dot(cpu) else
             "int8: no VNNI/AMX, int8 products take the slower multi-instruction path (smaller int8 gains)"]
    notes.append("bf16: AVX512_BF16/AMX-BF16 present, OpenVINO bf16 sets run in bf16" if has_bf16_math(cpu) else
                 "bf16: no AVX512_BF16/AMX-BF16, OpenVINO bf16 sets run in fp32 here")
    return notes
