"""2:4 semi-structured sparsity of the encoder's Linear layers, for the torch GPU path.

In every group of 4 consecutive input weights of a row, the 2 of smallest magnitude are zeroed
(`apply_2to4`, runs anywhere). On an Ampere-or-newer GPU, `to_semi_structured` then swaps those
weights for `torch.sparse.to_sparse_semi_structured` tensors (fp16/bf16), which use the sparse
tensor cores. Whether that pays depends on the GPU and shapes: measure it
(benchmarks/prune/gpu_sparse24.py), never assume it.
"""
from __future__ import annotations

import torch
from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured

ENCODER_LINEARS = ("attn.qkv", "attn.proj", "mlp.lin1", "mlp.lin2")


def semi_structured_mask(weight: torch.Tensor) -> torch.Tensor:
    """Bool mask keeping the 2 largest-magnitude weights in each group of 4 along the input dim."""
    rows, cols = weight.shape
    if cols % 4:
        raise ValueError(f"2:4 sparsity: input width {cols} is not a multiple of 4")
    groups = weight.detach().abs().reshape(rows, cols // 4, 4)
    keep = groups.topk(2, dim=-1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, keep, True)
    return mask.reshape(rows, cols)


def is_2to4(weight: torch.Tensor) -> bool:
    """True when every group of 4 consecutive input weights has at most 2 non-zeros."""
    rows, cols = weight.shape
    return cols % 4 == 0 and bool(((weight.reshape(rows, cols // 4, 4) != 0).sum(-1) <= 2).all())


def encoder_linears(model) -> dict[str, torch.nn.Linear]:
    """The encoder blocks' qkv / proj / lin1 / lin2 layers by qualified name."""
    out = {}
    for i, block in enumerate(model.image_encoder.blocks):
        for name in ENCODER_LINEARS:
            out[f"image_encoder.blocks.{i}.{name}"] = block.get_submodule(name)
    return out


@torch.no_grad()
def apply_2to4(model) -> dict:
    """Zero the pruned half of every encoder Linear in place; returns counts for the report."""
    total = zeroed = 0
    for linear in encoder_linears(model).values():
        mask = semi_structured_mask(linear.weight)
        linear.weight.mul_(mask.to(linear.weight.dtype))
        total += mask.numel()
        zeroed += int((~mask).sum())
    return {"layers": len(encoder_linears(model)), "weights": total, "zeroed": zeroed}


def to_semi_structured(model, force_cutlass: bool = False) -> dict:
    """Replace 2:4-sparse encoder weights by compressed semi-structured tensors (CUDA fp16/bf16 only).

    Layers whose shapes the kernels do not support are left dense and listed under `skipped`.
    """
    if force_cutlass:
        SparseSemiStructuredTensor._FORCE_CUTLASS = True
    converted, skipped = [], []
    for name, linear in encoder_linears(model).items():
        w = linear.weight
        if not w.is_cuda or w.dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(f"2:4 sparsity: {name} is {w.dtype} on {w.device}; move the model to CUDA fp16/bf16 first")
        if not is_2to4(w):
            raise ValueError(f"2:4 sparsity: {name} is not 2:4 sparse; call apply_2to4(model) first")
        try:
            linear.weight = torch.nn.Parameter(to_sparse_semi_structured(w), requires_grad=False)
            converted.append(name)
        except RuntimeError as exc:  # shape constraints of the kernel (min rows/cols multiples)
            skipped.append(f"{name}: {str(exc).splitlines()[0]}")
    return {"converted": converted, "skipped": skipped}
