"""Export fixtures: one tiny model (vit_t at 64 px) and one bundle with every graph set, shared by the
whole folder (exports are the slow part, so the bundle is built once per session)."""
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
def calib_dir(tmp_path_factory):
    from edgesam.data import synthesize_dataset

    return synthesize_dataset(tmp_path_factory.mktemp("calib"), count=6, seed=1, size=96, free_count=2)


@pytest.fixture(scope="session")
def export_config(calib_dir, tmp_path_factory):
    from edgesam.export import ExportConfig

    return ExportConfig(precisions=("fp32", "fp16", "int8"), decoder_style="official", calib_data=str(calib_dir),
                        calib_cache=str(tmp_path_factory.mktemp("calib_cache")))


@pytest.fixture(scope="session")
def full_bundle(tiny_model, export_config, tmp_path_factory):
    from edgesam.export import export_bundle

    model, arch = tiny_model
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    manifest = export_bundle(model, out, export_config, arch=arch, progress=False)
    return out, manifest


@pytest.fixture(scope="session")
def fp32_bundle(full_bundle):
    return full_bundle


@pytest.fixture(scope="session")
def ov_bundle(tiny_model, calib_dir, tmp_path_factory):
    """The OpenVINO sets (fp32, bf16, int8) of the tiny model; skipped where openvino/nncf are missing."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from edgesam.export import ExportConfig, export_bundle

    model, arch = tiny_model
    config = ExportConfig(formats=("openvino",), precisions=("fp32", "bf16", "int8"), calib_data=str(calib_dir),
                          calib_max_images=4)
    out = tmp_path_factory.mktemp("ov_bundle") / "bundle"
    return out, export_bundle(model, out, config, arch=arch, progress=False)
