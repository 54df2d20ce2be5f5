"""Shared test setup: hardware markers skip cleanly, and the magnetic-tile data is found beside the repo."""
from __future__ import annotations

import os
import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def magnetic_tile_dir() -> Path | None:
    """../shared/data/magnetic-tile beside the checkout, or $EDGESAM_MAGNETIC_TILE; None if absent."""
    env = os.environ.get("EDGESAM_MAGNETIC_TILE")
    path = Path(env) if env else REPO.parent / "shared" / "data" / "magnetic-tile"
    return path if path.is_dir() else None


@pytest.fixture(scope="session", autouse=True)
def openvino_cache(tmp_path_factory):
    """Compiled OpenVINO models of every test go to a per-session folder, never the user's cache."""
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("openvino_cache")
    mp.setenv("EDGESAM_OPENVINO_CACHE", str(path))
    yield path
    mp.undo()


@pytest.fixture(scope="session")
def magnetic_tile() -> Path:
    path = magnetic_tile_dir()
    if path is None:
        pytest.skip("magnetic-tile data not found beside the repo (set EDGESAM_MAGNETIC_TILE)")
    return path


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    marked = [i for i in items if "gpu" in i.keywords or "tensorrt" in i.keywords]
    if not marked:
        return  # no hardware tests selected: don't pay torch's import just to ask about CUDA
    has_gpu = _cuda_available()
    has_trt = importlib.util.find_spec("tensorrt") is not None
    for item in marked:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
        if "tensorrt" in item.keywords and not (has_trt and has_gpu):
            item.add_marker(pytest.mark.skip(reason="needs TensorRT and a CUDA GPU"))
