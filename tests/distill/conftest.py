"""A tiny teacher (vit_t at 64 px, every weight random, seed 0) and a few synthetic line images, once per session."""
from __future__ import annotations

import pytest

IMAGE_SIZE = 64


def make_teacher(path, seed: int = 0):
    """Save a vit_t at 64 px with random weights (rel-pos tables too: SAM zero-initialises them)."""
    import torch

    from edgesam.models import arch_for, build_sam, save_checkpoint

    torch.manual_seed(seed)
    arch = arch_for("vit_t", IMAGE_SIZE)
    model = build_sam(arch)
    with torch.no_grad():
        for name, p in model.image_encoder.named_parameters():
            if "rel_pos" in name:
                p.normal_(0, 0.02)
    return save_checkpoint(model, path, arch)


@pytest.fixture(scope="session")
def teacher_path(tmp_path_factory):
    return make_teacher(tmp_path_factory.mktemp("teacher") / "teacher.pth")


@pytest.fixture(scope="session")
def line_dir(tmp_path_factory):
    """8 labelled synthetic images (2 per class: one lands in the held-out split) plus 3 defect-free ones (free/)."""
    from edgesam.data import synthesize_dataset

    return synthesize_dataset(tmp_path_factory.mktemp("line"), count=8, seed=0, size=80, free_count=3)


def tiny_config(teacher_path, line_dir, out_dir, **changes):
    from edgesam.distill import DistillConfig

    base = dict(teacher=str(teacher_path), student="vit_n", images=str(line_dir), out=str(out_dir / "student.pth"),
                views_per_image=2, epochs=3, batch_size=4, lr=2e-3, warmup_steps=2, latency_runs=0,
                eval_max_images=3, threads=1, val_fraction=0.3)
    base.update(changes)
    return DistillConfig(**base)
