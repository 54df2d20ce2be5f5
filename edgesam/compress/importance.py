"""Importance of attention heads and MLP hidden channels in SAM's ViT encoder blocks.

A head is the group of parameters that removing it deletes: its q, k and v rows of `attn.qkv`
(weight and bias) and its input columns of `attn.proj`. An MLP channel is its row of `mlp.lin1`
(weight, bias) and its column of `mlp.lin2`. Both scores return, per block, one value per head
and one per channel; higher means more important.

- magnitude: the L2 norm of the group's parameters (no data needed).
- taylor: the first-order estimate of how far the encoder's embeddings move when the group is
  removed, i.e. of the distillation error against the unpruned model. The gradient of the
  distillation loss itself is zero at the unpruned point (student == teacher), so instead we use
  Hutchinson probes: for a random direction r, (r . J_G w_G) = sum_G(w * d(r . f(x))/dw), and
  E_r[(r . J_G w_G)^2] = ||J_G w_G||^2, the squared embedding change of zeroing group G to first
  order. Averaged over calibration batches and probes; no labels needed.
"""
from __future__ import annotations

import torch


def head_group_sum(block, qkv_w: torch.Tensor, qkv_b: torch.Tensor, proj_w: torch.Tensor) -> torch.Tensor:
    """Sum per-element values laid out like qkv.weight / qkv.bias / proj.weight over each head -> (heads,)."""
    heads = block.attn.num_heads
    dim = proj_w.shape[0]
    q = qkv_w.reshape(3, heads, -1, qkv_w.shape[-1]).sum(dim=(0, 2, 3))
    b = qkv_b.reshape(3, heads, -1).sum(dim=(0, 2))
    p = proj_w.reshape(dim, heads, -1).sum(dim=(0, 2))
    return q + b + p


def channel_group_sum(lin1_w: torch.Tensor, lin1_b: torch.Tensor, lin2_w: torch.Tensor) -> torch.Tensor:
    """Sum per-element values laid out like lin1.weight / lin1.bias / lin2.weight over each channel."""
    return lin1_w.sum(dim=1) + lin1_b + lin2_w.sum(dim=0)


def _block_params(block):
    attn, mlp = block.attn, block.mlp
    return (attn.qkv.weight, attn.qkv.bias, attn.proj.weight), (mlp.lin1.weight, mlp.lin1.bias, mlp.lin2.weight)


@torch.no_grad()
def magnitude_scores(encoder) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per block: (head scores, channel scores) as L2 norms of each group's parameters."""
    heads, channels = [], []
    for block in encoder.blocks:
        hp, cp = _block_params(block)
        heads.append(head_group_sum(block, *(p.detach().float() ** 2 for p in hp)).sqrt())
        channels.append(channel_group_sum(*(p.detach().float() ** 2 for p in cp)).sqrt())
    return heads, channels


def taylor_scores(encoder, batches, probes: int = 2, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per block: (head scores, channel scores) as RMS first-order embedding change (see module doc).

    `batches` is an iterable of preprocessed (B, 3, S, S) float tensors. The encoder's parameters
    are left unchanged and its gradients cleared.
    """
    gen = torch.Generator().manual_seed(seed)
    blocks = list(encoder.blocks)
    sq_heads = [torch.zeros(b.attn.num_heads) for b in blocks]
    sq_chan = [torch.zeros(b.mlp.lin1.out_features) for b in blocks]
    flags = {p: p.requires_grad for p in encoder.parameters()}
    count = 0
    try:
        for p in encoder.parameters():
            p.requires_grad_(True)
        with torch.enable_grad():
            for x in batches:
                out = encoder(x)
                for _ in range(probes):
                    r = torch.randn(out.shape, generator=gen)
                    encoder.zero_grad(set_to_none=True)
                    (out * r).sum().backward(retain_graph=True)
                    _accumulate(blocks, sq_heads, sq_chan)
                    count += 1
    finally:
        encoder.zero_grad(set_to_none=True)
        for p, flag in flags.items():
            p.requires_grad_(flag)
    if count == 0:
        raise ValueError("taylor importance: got no calibration batches")
    return [(s / count).sqrt() for s in sq_heads], [(s / count).sqrt() for s in sq_chan]


@torch.no_grad()
def _accumulate(blocks, sq_heads, sq_chan) -> None:
    # Per-sample signed group sums: one value per batch (the probe already mixes the batch).
    for i, block in enumerate(blocks):
        hp, cp = _block_params(block)
        sq_heads[i] += head_group_sum(block, *(p * p.grad for p in hp)).float() ** 2
        sq_chan[i] += channel_group_sum(*(p * p.grad for p in cp)).float() ** 2


def block_importance(encoder, kind: str, batches=None, probes: int = 2, seed: int = 0):
    """Dispatch on the config's `importance` name."""
    if kind == "magnitude":
        return magnitude_scores(encoder)
    if kind == "taylor":
        if not batches:
            raise ValueError("taylor importance needs calibration images: pass --calib-data DIR (or --recover-data DIR)")
        return taylor_scores(encoder, batches, probes=probes, seed=seed)
    raise ValueError(f"importance: expected 'magnitude' or 'taylor', got {kind!r}")
