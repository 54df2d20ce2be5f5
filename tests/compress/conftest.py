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
