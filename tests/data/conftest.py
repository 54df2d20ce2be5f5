"""Fixtures for edgesam.data tests: tiny on-disk datasets built per test, a small synthetic set
shared by the session, and the magnetic-tile set beside the checkout (skipped when absent)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgesam.data import synthesize_dataset


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def save_image():
    """save_image(path, array): write with Pillow (not the code under test), creating folders."""
    return save


@pytest.fixture
def make_pairs(tmp_path):
    """Write an images/ + masks/ folder; returns (root, write) where write(stem, image, mask)."""
    root = tmp_path / "parts"

    def write(stem: str, image: np.ndarray, mask: np.ndarray | None, image_ext=".png", mask_ext=".png"):
        save(root / "images" / f"{stem}{image_ext}", image)
        if mask is not None:
            save(root / "masks" / f"{stem}{mask_ext}", mask)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        return root

    return root, write


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """8 labelled images (2 per class) + 2 defect-free ones, about 96 px a side."""
    return synthesize_dataset(tmp_path_factory.mktemp("synth") / "set", count=8, seed=3, size=96, free_count=2)


def magnetic_tile_path() -> Path | None:
    env = os.environ.get("EDGESAM_MAGNETIC_TILE")
    path = Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared/data/magnetic-tile"
    return path if path.is_dir() else None


@pytest.fixture
def magnetic_tile() -> Path:
    path = magnetic_tile_path()
    if path is None:
        pytest.skip("magnetic-tile dataset not found beside the checkout (set EDGESAM_MAGNETIC_TILE)")
    return path
