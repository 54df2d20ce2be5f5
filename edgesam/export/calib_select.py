"""`edgesam calib build`: choose a small, diverse calibration set from a folder of line images.

INT8 ranges come from the calibration images, so they should cover what the line sees (lighting,
part variants, defects) rather than many near-copies of one frame. Each image is described by
cheap statistics (a 16x16 grayscale thumbnail, its mean, contrast and an 8-bin histogram) and the
set is chosen by farthest-point sampling in that space: start from the most typical image, then
repeatedly add the image farthest from everything chosen so far.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from edgesam.data import read_image
from edgesam.export.calibration import CalibrationError, find_images
from edgesam.export.staging import check_destination, staged_dir

SELECTION = "selection.json"
from edgesam_runtime.geometry import to_rgb_uint8

THUMB = 16


def describe(image: np.ndarray) -> np.ndarray:
    """A feature vector of one image: thumbnail, mean, contrast, histogram (all in 0..1 units)."""
    gray = to_rgb_uint8(image).mean(axis=2).astype(np.uint8)
    thumb = np.asarray(Image.fromarray(gray).resize((THUMB, THUMB), Image.BILINEAR), np.float32) / 255.0
    hist = np.histogram(gray, bins=8, range=(0, 256))[0] / gray.size
    return np.concatenate([thumb.ravel() / THUMB, [gray.mean() / 255.0, gray.std() / 128.0], hist]).astype(np.float32)


def farthest_point_order(features: np.ndarray, count: int) -> list[int]:
    """Indices of `count` rows: the one nearest the mean first, then each farthest from those chosen."""
    count = min(count, len(features))
    first = int(np.argmin(np.linalg.norm(features - features.mean(axis=0), axis=1)))
    chosen = [first]
    dist = np.linalg.norm(features - features[first], axis=1)
    while len(chosen) < count:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(features - features[nxt], axis=1))
    return chosen


def _in_calibration_set(path: Path, src: Path) -> bool:
    """Whether `path` lies in a calibration set this verb wrote inside `src` (its folder holds SELECTION): its
    images are copies of `src`'s own, so a second build into another folder of `src` must not pick them again."""
    return any((folder / SELECTION).is_file() for folder in path.parents if folder != src and folder.is_relative_to(src))


def build_calibration_set(src: str | Path, out: str | Path, count: int = 16, overwrite: bool = False) -> dict:
    """Copy `count` diverse images from `src` (recursive; label folders skipped) to `out`.

    Writes `out/selection.json` (source, chosen files, order); `out` (new, empty or an earlier
    calibration set) is replaced atomically; `overwrite` writes into any folder, keeping its other files.
    """
    src, out = Path(src), Path(out)
    check_destination(out, SELECTION, overwrite)  # before the images are read
    if count < 1:
        raise ValueError(f"count: expected >= 1, got {count}")
    images = [p for p in find_images(src) if not _in_calibration_set(p, src)] if src.is_dir() else []
    if not images:
        raise CalibrationError(f"{src}: no images found (expected a folder of line images)")
    features = np.stack([describe(read_image(p)) for p in images])
    order = farthest_point_order(features, count)
    chosen = [images[i] for i in order]
    with staged_dir(out, marker=SELECTION, overwrite=overwrite) as tmp:  # replaces only an earlier calibration set
        names = []
        for i, path in enumerate(chosen):
            name = f"{i:03d}_{path.parent.parent.name + '_' if path.parent.name == 'images' else ''}{path.name}"
            shutil.copyfile(path, tmp / name)
            names.append(name)
        summary = {"source": str(src.resolve()), "candidates": len(images), "count": len(chosen),
                   "method": "farthest-point sampling on thumbnail + intensity statistics",
                   "files": [{"file": n, "source": str(p.relative_to(src))} for n, p in zip(names, chosen)]}
        (tmp / SELECTION).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
