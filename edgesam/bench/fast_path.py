"""The torch fast path, benchmarked as a format of its own: the image encoder in bf16/fp16 with the
memory-efficient (SDPA) attention and optional `torch.compile`; prompt encoder and mask decoder stay
fp32 (they are cheap on a GPU, and the mask logits keep full precision). It answers through the
reference predictor's own `set_image`/`predict`, so it is scored exactly like the reference.

Meant for a CUDA GPU; on CPU it runs (bf16 there is slower than fp32) so tests can check its output.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from edgesam.reference.predictor import SamReferencePredictor

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
SHORT = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


@dataclass(frozen=True)
class FastPathConfig:
    dtype: str = "bfloat16"
    compile: bool = False
    compile_mode: str | None = "max-autotune-no-cudagraphs"
    efficient_attention: bool = True

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"fast path dtype: expected one of {sorted(DTYPES)}, got {self.dtype!r}")

    @property
    def tag(self) -> str:
        return SHORT[self.dtype] + ("_compile" if self.compile else "")


def _efficient_attention(module):
    try:
        from edgesam.models.attention import use_efficient_attention
    except ImportError:  # the official attention still works, only slower and hungrier
        return module
    return use_efficient_attention(module)


class _CastEncoder(torch.nn.Module):
    """The image encoder in `dtype` (optionally compiled) behind the fp32 interface the predictor expects."""

    def __init__(self, encoder, dtype, run):
        super().__init__()
        self.encoder, self.dtype, self._run = encoder, dtype, run
        self.img_size = encoder.img_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x.to(self.dtype)).float()


class TorchFastPath(SamReferencePredictor):
    """The reference predictor (`set_image`/`predict`, same geometry and decoder) on a copy of the model
    whose image encoder runs in `config.dtype`; `encode_array` encodes a preprocessed batch."""

    def __init__(self, model, config: FastPathConfig = FastPathConfig(), device: str = "cuda"):
        self.config = config
        model = copy.deepcopy(model).eval().to(device)  # the caller's model stays fp32 and untouched
        dtype = DTYPES[config.dtype]
        encoder = model.image_encoder.to(dtype)
        if config.efficient_attention:
            _efficient_attention(encoder)
        run = torch.compile(encoder, mode=config.compile_mode) if config.compile else encoder
        model.image_encoder = _CastEncoder(encoder, dtype, run)
        super().__init__(model, device)

    @torch.inference_mode()
    def encode_array(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) preprocessed float32 images -> (B, 256, S/16, S/16) float32 features."""
        features = self.model.image_encoder(torch.as_tensor(x).to(self.device, non_blocking=True))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return features
