"""A tiny bundle (vit_t at 64 px, random init, seed 0), its checkpoint, and 3 synthetic images."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def bench_setup(tmp_path_factory):
    import torch

    from edgesam.data import synthesize_dataset
    from edgesam.export import ExportConfig, export_bundle
    from edgesam.models import create_model, save_checkpoint
    from edgesam.models.registry import arch_for

    root = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    arch = arch_for("vit_t", 64)
    model = create_model("vit_t", image_size=64).eval()
    checkpoint = root / "model.pth"
    save_checkpoint(model, checkpoint, arch)
    bundle = root / "bundle"
    export_bundle(checkpoint, bundle, ExportConfig(precisions=("fp32",)), progress=False)
    data = synthesize_dataset(root / "data", count=3, seed=0, size=96)
    return {"bundle": bundle, "checkpoint": checkpoint, "data": data, "root": root}
