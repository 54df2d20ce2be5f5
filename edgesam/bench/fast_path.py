"""The torch fast path, benchmarked as a format of its own: the image encoder in bf16/fp16 with the
memory-efficient (SDPA) attention and optional `torch.compile`; prompt encoder and mask decoder stay
fp32 (they are cheap on a GPU, and the mask logits keep full precision).

Meant for a CUDA GPU; on CPU it runs (bf16 there is slower than fp32) so tests can check its output.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from edgesam.models.prompt import decode_all

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


class TorchFastPath:
    """`encode_array` (batched) + `set_embedding`/`decode` like `SamReferencePredictor`."""

    def __init__(self, model, config: FastPathConfig = FastPathConfig(), device: str = "cuda"):
        self.config, self.device = config, torch.device(device)
        model = copy.deepcopy(model).eval().to(self.device)
        self.model = model
        self.dtype = DTYPES[config.dtype]
        encoder = model.image_encoder.to(self.dtype)
        if config.efficient_attention:
            _efficient_attention(encoder)
        self.encoder = torch.compile(encoder, mode=config.compile_mode) if config.compile else encoder
        self.features, self.original_hw = None, None

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @torch.inference_mode()
    def encode_array(self, x: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) preprocessed float32 images -> (B, 256, S/16, S/16) float32 features."""
        x = torch.as_tensor(x).to(self.device, self.dtype, non_blocking=True)
        features = self.encoder(x).float()
        self._sync()
        return features

    def set_embedding(self, features: torch.Tensor, original_hw) -> None:
        self.features, self.original_hw = features.to(self.device), tuple(original_hw)

    @torch.inference_mode()
    def decode(self, coords: np.ndarray, labels: np.ndarray, mask_input=None):
        mask = None if mask_input is None else torch.as_tensor(mask_input, dtype=torch.float32, device=self.device)
        low_res, iou = decode_all(self.model, self.features, torch.from_numpy(coords).to(self.device),
                                  torch.from_numpy(labels).to(self.device), mask)
        return low_res.float().cpu().numpy(), iou.float().cpu().numpy()
