"""The toolchain's record of its environment: the runtime's (`edgesam_runtime.envinfo`: Python, numpy,
onnxruntime, OpenVINO, TensorRT, the CPU) plus torch, CUDA and the GPU."""
from __future__ import annotations

import torch

from edgesam_runtime.envinfo import environment


def torch_environment() -> dict:
    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["compute_capability"] = ".".join(map(str, torch.cuda.get_device_capability(0)))
    return env


def toolchain_environment() -> dict:
    """What a bundle, a report or a benchmark run by the toolchain records about the machine."""
    return {**environment(), **torch_environment()}
