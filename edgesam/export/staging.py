"""Build a bundle in a temporary folder beside its destination and swap it in only on success.

An interrupted or failing export therefore never leaves a bundle that looks complete, and an
existing bundle at the destination is replaced only once the new one is whole.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from edgesam.manifest import MANIFEST_NAME


class BundleDestinationError(ValueError):
    """The output folder exists and holds something other than an edgesam bundle."""


def check_destination(out_dir: Path) -> None:
    """Refuse to replace a folder that is neither empty nor an edgesam bundle (it may be user data)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise BundleDestinationError(f"{out_dir}: exists and is not a folder; choose another --out")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST_NAME).is_file():
        raise BundleDestinationError(
            f"{out_dir}: exists, is not empty and holds no {MANIFEST_NAME}; refusing to replace it (choose another --out)"
        )


@contextlib.contextmanager
def staged_dir(out_dir: str | os.PathLike) -> Iterator[Path]:
    out_dir = Path(out_dir)
    check_destination(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_into_place(tmp, out_dir)


def swap_into_place(tmp: Path, out_dir: Path) -> None:
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / "bundle")
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a bundle is meant to be shared
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        if old is not None:
            os.replace(old / "bundle", out_dir)  # put the previous bundle back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
