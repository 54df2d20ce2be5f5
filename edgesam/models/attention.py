"""Memory-efficient image-encoder attention for training and the fast torch path.

segment-anything's `Attention` materialises the softmax probabilities of every head, and autograd
keeps them for the backward pass: at 64x64 tokens (ViT-B, 1024 px global blocks) that is what makes
one batch-4 training step take ~34 GiB. `EfficientAttention` computes the same function with
`scaled_dot_product_attention`, passing SAM's decomposed relative-position bias as the additive
mask, so fused kernels (flash / memory-efficient) never store the probabilities. Parameter names
and shapes are unchanged: official and pruned checkpoints load into it as they are.

The PyTorch reference predictor keeps the official module; this one is opt-in via
`use_efficient_attention(model)`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import Attention, get_rel_pos


def rel_pos_bias(q: torch.Tensor, rel_pos_h, rel_pos_w, size: tuple[int, int]) -> torch.Tensor:
    """SAM's decomposed relative-position term as an additive (B, heads, HW, HW) attention mask.

    q is (B, heads, H*W, C), unscaled (as the official code uses it).
    """
    h, w = size
    b, n_heads, _, dim = q.shape
    r_q = q.reshape(b * n_heads, h, w, dim)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, get_rel_pos(h, h, rel_pos_h).to(q.dtype))
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, get_rel_pos(w, w, rel_pos_w).to(q.dtype))
    bias = rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]
    return bias.reshape(b, n_heads, h * w, h * w)


class EfficientAttention(Attention):
    """Drop-in for segment_anything's `Attention` (same parameters) using fused SDPA kernels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        heads = self.num_heads  # taken from the module, so pruned blocks work too
        qkv = self.qkv(x).reshape(b, h * w, 3, heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, heads, HW, C)
        mask = rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w, (h, w)) if self.use_rel_pos else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        out = out.view(b, heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
        return self.proj(out)


def use_efficient_attention(model: torch.nn.Module) -> torch.nn.Module:
    """Switch every encoder `Attention` in `model` to `EfficientAttention`, in place; returns model.

    Only the class changes (no parameter is copied or renamed), so state dicts, peft LoRA layers
    already injected into `qkv`/`proj`, and optimizer references all stay valid.
    """
    for module in model.modules():
        if type(module) is Attention:
            module.__class__ = EfficientAttention
    return model


def use_official_attention(model: torch.nn.Module) -> torch.nn.Module:
    """Undo `use_efficient_attention` (for the reference path), in place; returns model."""
    for module in model.modules():
        if type(module) is EfficientAttention:
            module.__class__ = Attention
    return model
