"""Calibration images for INT8: finding them, feeding them, and caching the ranges they give.

The reader feeds the encoder exactly what inference feeds it: `edgesam.geometry.preprocess`
(resize longest side, normalize, pad). Images are found recursively under the calibration folder;
folders named like label folders (`masks`, `labels`, ...) are skipped so a dataset root can serve.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from edgesam import geometry, io_spec
from edgesam.data import read_image
from edgesam.data.io import IMAGE_EXTENSIONS

LABEL_FOLDERS = {"masks", "mask", "labels", "label", "annotations", "gt"}
CACHE_ENV = "EDGESAM_CACHE"


class CalibrationError(ValueError):
    """No usable calibration data: INT8 export stops rather than calibrate on nothing."""


def find_images(root: Path) -> list[Path]:
    """Image files under `root` (recursive, sorted), skipping hidden files and label folders."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d.lower() not in LABEL_FOLDERS and not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames)
                if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    return out


def resolve_calibration_images(calib_data, max_images: int) -> list[Path]:
    """The calibration images to use: `calib_data` (or the repo's `calibration/` set), at most
    `max_images` of them spread evenly over the sorted list. Raises CalibrationError if none."""
    from edgesam.export.config import default_calibration_dir

    root = Path(calib_data) if calib_data else default_calibration_dir()
    hint = "INT8 needs calibration images from your line: pass --calib-data DIR (see calibration/README.md)"
    if not root.is_dir():
        what = "calib_data" if calib_data else "the default calibration set"
        raise CalibrationError(f"{root}: {what} is not a folder; {hint}")
    images = find_images(root)
    if not images:
        raise CalibrationError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)}) found; {hint}")
    if len(images) > max_images:
        picks = np.linspace(0, len(images) - 1, max_images).round().astype(int)
        images = [images[i] for i in picks]
    return images


class ImageCalibrationReader(CalibrationDataReader):
    """Feeds `{"image": preprocessed tensor}` for each calibration image, once."""

    def __init__(self, images: list[Path], image_size: int):
        self.images, self.image_size = list(images), image_size
        self._next = 0

    def get_next(self):
        if self._next >= len(self.images):
            return None
        path = self.images[self._next]
        self._next += 1
        x, _, _ = geometry.preprocess(read_image(path), self.image_size)
        return {io_spec.ENCODER_INPUT: x}

    def __len__(self):
        return len(self.images)

    def rewind(self):
        self._next = 0


def calibration_digest(images: list[Path]) -> str:
    """sha256 over the calibration images' contents (names excluded: renaming changes nothing)."""
    digest = hashlib.sha256()
    for path in images:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def cache_dir(config_dir: str | None) -> Path:
    if config_dir:
        return Path(config_dir)
    base = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "edgesam"
    return Path(base) / "calibration"


def cache_key(model_sha256: str, images_sha256: str, settings: dict) -> str:
    """Ranges depend on the graph, the images and how they were collected: all three key the cache."""
    blob = json.dumps({"model": model_sha256, "images": images_sha256, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
