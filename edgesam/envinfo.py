"""Versions of the tools a bundle or report records (torch optional: the runtime calls this too)."""
from __future__ import annotations

import importlib
import platform


def _version(module: str) -> str | None:
    try:
        return importlib.import_module(module).__version__
    except Exception:
        return None


def environment(with_torch: bool = True) -> dict:
    """Python, numpy, onnx, onnxruntime (+ providers), TensorRT, and torch/CUDA/GPU when asked."""
    env = {"python": platform.python_version(), "platform": platform.platform(), "numpy": _version("numpy"),
           "onnx": _version("onnx"), "onnxruntime": _version("onnxruntime")}
    try:
        import onnxruntime as ort

        env["onnxruntime_providers"] = ort.get_available_providers()
    except Exception:
        env["onnxruntime_providers"] = []
    env["tensorrt"] = _version("tensorrt")
    if with_torch:
        env.update(torch_environment())
    return env


def torch_environment() -> dict:
    import torch

    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
    return env


def variant_table() -> list[dict]:
    """Each registered variant with its parameter counts (built on the meta device: no memory cost)."""
    import torch

    from edgesam.models import OFFICIAL_CHECKPOINTS, VARIANTS, build_sam, count_parameters

    rows = []
    for name, arch in VARIANTS.items():
        with torch.device("meta"):
            model = build_sam(arch)
        rows.append({
            "variant": name, "image_size": arch.image_size, "params_m": count_parameters(model) / 1e6,
            "encoder_params_m": count_parameters(model.image_encoder) / 1e6,
            "checkpoint": OFFICIAL_CHECKPOINTS.get(name),
        })
    return rows
