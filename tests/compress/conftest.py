"""Tiny seeded vit_t models shared by the compression tests (built once per session: CPU budget)."""
from __future__ import annotations

import pytest
import torch

from edgesam.models import arch_for, build_sam

IMAGE_SIZE = 64


def randomized(arch, seed: int = 0):
    """A vit_t with every parameter random (build_sam zero-initialises rel-pos tables)."""
    torch.manual_seed(seed)
    model = build_sam(arch)
    with torch.no_grad():
        for name, p in model.image_encoder.named_parameters():
            if "rel_pos" in name:
                p.normal_(0, 0.02)
    return model


@pytest.fixture(scope="session")
def tiny():
    """(model, arch) of vit_t at 64 px."""
    arch = arch_for("vit_t", IMAGE_SIZE)
    return randomized(arch), arch


@pytest.fixture(scope="session")
def images():
    torch.manual_seed(1)
    return torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """A tiny per-class synthetic inspection set (with a few unlabelled images)."""
    from edgesam.data import synthesize_dataset

    return synthesize_dataset(tmp_path_factory.mktemp("synth"), count=6, seed=0, size=96, free_count=2)


@pytest.fixture(scope="session")
def pruned_checkpoint(tiny, tmp_path_factory):
    """A pruned (heads, channels and one block) tiny model saved with its arch: (path, model, arch)."""
    from edgesam.compress import PruneConfig, prune_model
    from edgesam.models import save_checkpoint

    model, arch = tiny
    pruned, new_arch, _ = prune_model(model, arch, PruneConfig(head_ratio=0.34, mlp_ratio=0.5, remove_blocks=(4,)))
    path = tmp_path_factory.mktemp("pruned") / "pruned.pth"
    save_checkpoint(pruned, path, new_arch)
    return path, pruned, new_arch
