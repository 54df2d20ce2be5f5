"""Structured pruning of SAM's ViT image encoder: a real smaller model, not a masked one.

Heads (q, k, v rows of `attn.qkv` + columns of `attn.proj`) and MLP channels (`mlp.lin1` rows +
`mlp.lin2` columns) are removed by slicing the weights into the smaller Linear layers that
`build_sam` makes for the pruned `ArchConfig`; whole blocks can be dropped too. Kept units stay in
their original order, so pruning nothing reproduces the model bit for bit. The relative-position
tables are per head_dim (shared by all heads) and are kept as they are.
"""
from __future__ import annotations

import math
import re

import torch

from edgesam.compress.config import PruneConfig
from edgesam.compress.flops import encoder_flops
from edgesam.compress.importance import block_importance
from edgesam.models import ArchConfig, build_sam, count_parameters

_BLOCK_KEY = re.compile(r"^image_encoder\.blocks\.(\d+)\.(.+)$")


def prune_model(model, arch: ArchConfig, config: PruneConfig, calib_batches=None):
    """Rank and remove heads/channels/blocks; return (pruned_model, pruned_arch, report).

    `calib_batches`: preprocessed (B, 3, S, S) tensors, needed by the taylor importance.
    The input model is not modified.
    """
    encoder = model.image_encoder
    if len(encoder.blocks) != arch.depth:
        raise ValueError(f"prune: arch says depth {arch.depth} but the model has {len(encoder.blocks)} blocks")
    kept_blocks = _kept_blocks(arch.depth, config.remove_blocks)
    heads, channels = block_importance(encoder, config.importance, calib_batches, config.taylor_probes, config.seed)
    heads = [heads[i] for i in kept_blocks]
    channels = [channels[i] for i in kept_blocks]
    head_keep = select_units(heads, config.heads_fraction, config.scope, multiple=1)
    chan_keep = select_units(channels, config.mlp_fraction, config.scope, multiple=config.channel_multiple)
    new_arch = pruned_arch(arch, kept_blocks, head_keep, chan_keep)
    pruned = build_sam(new_arch)
    pruned.load_state_dict(slice_state(model.state_dict(), arch, kept_blocks, head_keep, chan_keep), strict=True)
    pruned.train(model.training)
    report = _report(model, pruned, arch, new_arch, config, kept_blocks)
    return pruned, new_arch, report


def _kept_blocks(depth: int, remove: tuple[int, ...]) -> list[int]:
    bad = [b for b in remove if b >= depth]
    if bad:
        raise ValueError(f"prune: remove_blocks {bad} out of range; the encoder has blocks 0..{depth - 1}")
    kept = [i for i in range(depth) if i not in set(remove)]
    if not kept:
        raise ValueError("prune: remove_blocks would remove every encoder block")
    return kept


def _keep_count(total: int, fraction: float, multiple: int) -> int:
    """Units left after removing round(fraction * total), rounded up to `multiple`, at least one step."""
    keep = total - int(math.floor(fraction * total + 0.5))
    if multiple > 1 and keep % multiple:
        keep = min(total, (keep // multiple + 1) * multiple)
    return max(keep, min(total, multiple))


def select_units(scores: list[torch.Tensor], fraction: float, scope: str, multiple: int = 1) -> list[list[int]]:
    """Indices to keep per block (sorted), from per-block scores.

    per_block: every block loses the same fraction. global: scores are divided by their block's
    mean (raw magnitudes differ between layers) and ranked together; each block then keeps the
    count that survives the global threshold, rounded up to `multiple`.
    """
    if scope == "per_block":
        counts = [_keep_count(len(s), fraction, multiple) for s in scores]
    else:
        counts = _global_counts(scores, fraction, multiple)
    return [sorted(torch.argsort(s, descending=True, stable=True)[:k].tolist()) for s, k in zip(scores, counts)]


def _global_counts(scores: list[torch.Tensor], fraction: float, multiple: int) -> list[int]:
    normed = [s / s.mean().clamp_min(1e-12) for s in scores]
    owner = torch.cat([torch.full((len(s),), i) for i, s in enumerate(scores)])
    remove = int(math.floor(fraction * owner.numel() + 0.5))
    removed = owner[torch.argsort(torch.cat(normed), stable=True)[:remove]]
    counts = []
    for i, s in enumerate(scores):
        keep = len(s) - int((removed == i).sum())
        if multiple > 1 and keep % multiple:
            keep = (keep // multiple + 1) * multiple
        counts.append(min(len(s), max(keep, min(len(s), multiple))))
    return counts


def pruned_arch(arch: ArchConfig, kept_blocks, head_keep, chan_keep) -> ArchConfig:
    """The ArchConfig of the pruned encoder; provenance (original block indices) goes in `extra`."""
    original = arch.extra.get("kept_blocks", list(range(arch.depth)))
    extra = dict(arch.extra)
    extra["kept_blocks"] = [original[i] for i in kept_blocks]
    extra.setdefault("pruned_from", {"depth": arch.depth, "num_heads": arch.num_heads, "mlp_dim": arch.mlp_dim})
    return arch.replace(
        depth=len(kept_blocks),
        global_attn_indexes=tuple(j for j, i in enumerate(kept_blocks) if i in arch.global_attn_indexes),
        block_heads=tuple(len(h) for h in head_keep),
        block_mlp_dims=tuple(len(c) for c in chan_keep),
        extra=extra,
    )


def slice_state(state: dict, arch: ArchConfig, kept_blocks, head_keep, chan_keep) -> dict:
    """The state dict of the pruned model: kept blocks renumbered, pruned Linear weights sliced."""
    new_index = {old: new for new, old in enumerate(kept_blocks)}
    out = {}
    for key, value in state.items():
        m = _BLOCK_KEY.match(key)
        if not m:
            out[key] = value.clone()
            continue
        old, name = int(m.group(1)), m.group(2)
        if old not in new_index:
            continue
        j = new_index[old]
        rows = _qkv_rows(head_keep[j], arch.heads(old), arch.head_dim)
        out[f"image_encoder.blocks.{j}.{name}"] = _slice(name, value, rows, chan_keep[j]).clone()
    return out


def _qkv_rows(heads: list[int], num_heads: int, head_dim: int) -> torch.Tensor:
    """Row indices of qkv (laid out [q|k|v][head][head_dim]) for the kept heads, in order."""
    idx = torch.arange(3 * num_heads * head_dim).reshape(3, num_heads, head_dim)
    return idx[:, heads, :].reshape(-1)


def _slice(name: str, value: torch.Tensor, qkv_rows: torch.Tensor, channels: list[int]) -> torch.Tensor:
    if name.startswith("attn.qkv."):
        return value.index_select(0, qkv_rows)
    if name == "attn.proj.weight":  # input columns laid out [head][head_dim], as qkv's q part
        inner = qkv_rows[: qkv_rows.numel() // 3]
        return value.index_select(1, inner)
    ch = torch.tensor(channels, dtype=torch.long)
    if name.startswith("mlp.lin1."):
        return value.index_select(0, ch)
    if name == "mlp.lin2.weight":
        return value.index_select(1, ch)
    return value


def _report(model, pruned, arch, new_arch, config, kept_blocks) -> dict:
    before, after = encoder_flops(arch), encoder_flops(new_arch)
    p_before, p_after = count_parameters(model.image_encoder), count_parameters(pruned.image_encoder)
    return {
        "config": config.to_dict(),
        "kept_blocks": new_arch.extra["kept_blocks"],
        "block_heads": list(new_arch.block_heads),
        "block_mlp_dims": list(new_arch.block_mlp_dims),
        "encoder_params": {"before": p_before, "after": p_after, "ratio": p_after / p_before},
        "model_params": {"before": count_parameters(model), "after": count_parameters(pruned)},
        "encoder_gflops": {"before": before["total"] / 1e9, "after": after["total"] / 1e9,
                           "ratio": after["total"] / before["total"]},
        "arch": new_arch.to_dict(),
    }
