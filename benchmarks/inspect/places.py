"""Where the inspect benchmarks find the repository and the data, and how their results name paths."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("EDGESAM_MAGNETIC_TILE", REPO.parent / "shared" / "data" / "magnetic-tile"))


def shown(path) -> str:
    """A path as the results record it: relative to the repository (no machine-specific prefix)."""
    return os.path.relpath(os.path.abspath(path), REPO)
