"""Export fixtures: one tiny model (vit_t at 64 px) and bundles shared by the whole folder (exports
are the slow part, so each bundle is built once per session)."""
from __future__ import annotations

import pytest
import torch

IMAGE_SIZE = 64


@pytest.fixture(scope="session")
def tiny_model():
    from edgesam.models import arch_for, build_sam

    torch.manual_seed(0)
    arch = arch_for("vit_t", IMAGE_SIZE)
    return build_sam(arch), arch


@pytest.fixture(scope="session")
def fp32_bundle(tiny_model, tmp_path_factory):
    from edgesam.export import ExportConfig, export_bundle

    model, arch = tiny_model
    out = tmp_path_factory.mktemp("fp32") / "bundle"
    manifest = export_bundle(model, out, ExportConfig(precisions=("fp32",)), arch=arch, progress=False)
    return out, manifest
