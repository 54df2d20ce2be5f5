"""Regenerate the default INT8 calibration set in calibration/default/ (deterministic, seed 0).

    .venv/bin/python calibration/build_default.py

16 synthetic grayscale inspection images from `edgesam.data.synthesize_dataset` (12 with defects,
4 defect-free), 256 px: a stand-in so `edgesam export --int8` works out of the box. Calibrate on
your own line images for production (see README.md).
"""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from edgesam.data import list_images, synthesize_dataset

OUT = Path(__file__).resolve().parent / "default"
COUNT, FREE, SEED, SIZE = 12, 4, 0, 256


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = synthesize_dataset(tmp, count=COUNT, seed=SEED, size=SIZE, free_count=FREE)
        images = [p for d in sorted(root.iterdir()) if (d / "images").is_dir() for p in list_images(d / "images")]
        staging = OUT.with_name(".default.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for path in images:
            shutil.copyfile(path, staging / path.name)
        shutil.rmtree(OUT, ignore_errors=True)
        staging.rename(OUT)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{OUT}: {len(images)} images, {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
