"""One tiny fp32 bundle per test session (vit_t at 64 px, random init, seed 0) and its torch model.

`segmenter` is parametrised over the CPU backends, so every parity, error and thread test runs on
ONNX Runtime and on OpenVINO (skipped where the openvino package is not installed).
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

IMAGE_SIZE = 64
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
CPU_BACKENDS = ["onnxruntime",
                pytest.param("openvino", marks=pytest.mark.skipif(not HAS_OPENVINO, reason="openvino not installed"))]


@pytest.fixture(scope="session")
def tiny_model():
    import torch

    from edgesam.models import create_model

    torch.manual_seed(0)
    return create_model("vit_t", image_size=IMAGE_SIZE).eval()


@pytest.fixture(scope="session")
def bundle_dir(tiny_model, tmp_path_factory):
    from edgesam.export import ExportConfig, export_bundle

    out = tmp_path_factory.mktemp("runtime") / "bundle"
    export_bundle(tiny_model, out, ExportConfig(precisions=("fp32",)), progress=False)
    return out


@pytest.fixture(scope="session", params=CPU_BACKENDS)
def segmenter(bundle_dir, request):
    from edgesam_runtime import Segmenter

    seg = Segmenter.open(bundle_dir, backend=request.param, threads=1)
    assert seg.backend.name == request.param
    return seg


def line_image(height=90, width=140, channels=None, dtype=np.uint8, seed=0) -> np.ndarray:
    """A textured test image with a bright blob, so masks have structure and boundaries."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    blob = ((yy - height * 0.4) ** 2 + (xx - width * 0.6) ** 2) < (min(height, width) * 0.25) ** 2
    base = 80 + 40 * np.sin(xx / 7.0) + 100 * blob + rng.normal(0, 8, (height, width))
    img = np.clip(base, 0, 255)
    if dtype == np.uint16:
        img = img * 257
    img = img.astype(dtype)
    if channels:
        img = np.repeat(img[:, :, None], channels, axis=2)
    return img


@pytest.fixture(scope="session")
def make_image():
    """`line_image` as a fixture, so test modules need no package imports."""
    return line_image
