"""Analytic FLOPs of SAM's ViT image encoder from its ArchConfig (one image).

Counted: multiply-adds of the patch embedding, each block's qkv and proj (on the padded window
grid for windowed blocks, as SAM pads before partitioning), attention maps (q.k^T and attn.v),
the decomposed relative-position terms, the MLP, and the neck convolutions; FLOPs = 2 x MACs.
Not counted (small, elementwise): LayerNorm, softmax, GELU, residual adds, position embedding.
"""
from __future__ import annotations

import math

from edgesam.models import ArchConfig


def block_macs(arch: ArchConfig, i: int) -> dict[str, int]:
    """Multiply-adds of encoder block `i`, by part."""
    grid = arch.image_size // arch.patch_size
    tokens = grid * grid
    heads, hd, dim = arch.heads(i), arch.head_dim, arch.embed_dim
    inner = heads * hd
    if i in arch.global_attn_indexes:
        windows, side = 1, grid
    else:
        side = arch.window_size
        windows = math.ceil(grid / side) ** 2
    per_window = side * side
    padded = windows * per_window
    return {
        "qkv": padded * dim * 3 * inner,
        "proj": padded * inner * dim,
        "attention": 2 * heads * windows * per_window * per_window * hd,
        "rel_pos": heads * windows * per_window * (2 * side) * hd,
        "mlp": 2 * tokens * dim * arch.mlp_width(i),
    }


def encoder_flops(arch: ArchConfig) -> dict[str, float]:
    """FLOPs by part and `total` for one image through the encoder."""
    grid = arch.image_size // arch.patch_size
    tokens = grid * grid
    out = arch.prompt_embed_dim
    macs = {
        "patch_embed": tokens * 3 * arch.patch_size ** 2 * arch.embed_dim,
        "neck": tokens * arch.embed_dim * out + tokens * 9 * out * out,
    }
    for i in range(arch.depth):
        for part, value in block_macs(arch, i).items():
            macs[part] = macs.get(part, 0) + value
    flops = {part: 2 * value for part, value in macs.items()}
    flops["total"] = sum(flops.values())
    return flops
