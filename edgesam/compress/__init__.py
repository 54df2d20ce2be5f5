"""Compression of SAM's image encoder: structured pruning, recovery distillation, 2:4 sparsity.

    pruned, arch, report = prune_model(model, arch, PruneConfig(head_ratio=0.25, mlp_ratio=0.5))
    save_checkpoint(pruned, "pruned.pth", arch)   # records the arch: reloads without flags
"""
from edgesam.compress.config import PruneConfig, RecoveryConfig
from edgesam.compress.flops import block_macs, encoder_flops
from edgesam.compress.importance import magnitude_scores, taylor_scores
from edgesam.compress.structured import prune_model, select_units

__all__ = [
    "PruneConfig", "RecoveryConfig", "block_macs", "encoder_flops", "magnitude_scores", "prune_model",
    "select_units", "taylor_scores",
]
