"""A small synthetic per-class dataset and a tiny seeded model (vit_t at 64 px), once per session."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def eval_data(tmp_path_factory):
    from edgesam.data import synthesize_dataset

    return synthesize_dataset(tmp_path_factory.mktemp("eval_data"), count=10, seed=2, size=80, free_count=2)


@pytest.fixture(scope="session")
def eval_model():
    import torch

    from edgesam.models import create_model

    torch.manual_seed(0)
    return create_model("vit_t", image_size=64).eval()
