"""Build a bundle (or a calibration set) in a temporary folder beside its destination and swap it
in only on success.

An interrupted or failing export therefore never leaves a bundle that looks complete, and an
existing bundle at the destination is replaced only once the new one is whole: where the system
can (Linux's renameat2), the two folders are exchanged in one atomic step, so some bundle is at the
destination at every instant.

A killed export cannot clean up after itself: its `.<name>.partial-*` folder stays beside the
destination. Each staging folder records its owner (host and process id); the next export into the
same place removes those whose owner is gone, and puts back a previous bundle that a kill left in an
`.<name>.old-*` folder halfway through a two-step swap.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator

from edgesam_runtime.manifest import MANIFEST_NAME

OWNER_FILE = ".edgesam-owner"
# A staging folder without an owner record is abandoned once this old (it can lack one only for the
# instant between its creation and the record's write, or when an older edgesam made it).
UNOWNED_STALE_S = 60.0


class BundleDestinationError(ValueError):
    """The output folder exists and holds something other than what edgesam wrote there."""


def written_files(out_dir: Path, marker: str = MANIFEST_NAME) -> set[str] | None:
    """The files an earlier export (or calibration set) in `out_dir` wrote, from its `marker` record:
    the manifest's graph and weights files, or the calibration set's chosen images; None without one."""
    try:
        record = json.loads((out_dir / marker).read_text())
        names = _file_entries(record) if marker == MANIFEST_NAME else {item["file"] for item in record["files"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return {os.path.normpath(n) for n in names} | {marker}


def _file_entries(manifest) -> set[str]:
    """Every file a manifest records with its hash (graph sets, the official decoder, whatever a later
    format adds), with the weights files beside each."""
    names, stack = set(), [manifest]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("file"), str) and "sha256" in item:
                names.add(item["file"])
                names.update(str(Path(item["file"]).parent / extra["file"]) for extra in item.get("external_data", []))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return names


def _foreign_files(out_dir: Path, marker: str) -> list[str]:
    """Files in `out_dir` that no earlier export (or calibration set) there wrote."""
    ours = (written_files(out_dir, marker) or set()) | {marker}
    found = (os.path.relpath(os.path.join(top, name), out_dir) for top, _, files in os.walk(out_dir) for name in files)
    return sorted(name for name in found if os.path.normpath(name) not in ours)


def check_destination(out_dir: Path, marker: str = MANIFEST_NAME, overwrite: bool = False) -> None:
    """Refuse to write into a folder that holds anything an earlier export (recognised by its `marker`
    record) did not write: it may be the user's data. With `overwrite` the new files go into it,
    replacing same-named ones only (`staged_dir`)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BundleDestinationError(f"{out_dir}: exists and is not a folder; choose another --out")
    if overwrite or not out_dir.is_dir():
        return
    foreign = _foreign_files(out_dir, marker)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise BundleDestinationError(
            f"{out_dir}: holds files edgesam did not write ({shown}); refusing to replace it (choose another output folder, "
            "or pass --overwrite to write into it: same-named files are replaced, no other is removed)")


@contextlib.contextmanager
def staged_dir(out_dir: str | os.PathLike, marker: str = MANIFEST_NAME, overwrite: bool = False) -> Iterator[Path]:
    """A fresh folder to build in; when the block succeeds it replaces `out_dir` (an earlier output of
    ours, swapped atomically), or with `overwrite` its files are moved into `out_dir` one by one."""
    out_dir = Path(out_dir)
    clean_stale(out_dir)
    check_destination(out_dir, marker, overwrite)
    merge = out_dir.is_dir() and bool(_foreign_files(out_dir, marker))  # only reached with overwrite
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _owned_tempdir(out_dir, "partial")
    try:
        yield tmp
        (tmp / OWNER_FILE).unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if merge:
        move_into(tmp, out_dir)
    else:
        swap_into_place(tmp, out_dir)


def move_into(tmp: Path, out_dir: Path) -> None:
    """Move every file of `tmp` into `out_dir` (replacing same-named files, keeping all others), the
    record (`manifest.json`, `selection.json`) last, so an interrupted move never looks complete."""
    files = sorted((Path(top) / name for top, _, names in os.walk(tmp) for name in names),
                   key=lambda p: p.name in (MANIFEST_NAME, "selection.json"))
    for path in files:
        target = out_dir / path.relative_to(tmp)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    shutil.rmtree(tmp, ignore_errors=True)


def _owned_tempdir(out_dir: Path, kind: str) -> Path:
    """A new `.<name>.<kind>-*` folder beside `out_dir`, recording this process as its owner."""
    folder = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.{kind}-", dir=out_dir.parent))
    (folder / OWNER_FILE).write_text(f"{socket.gethostname()} {os.getpid()}\n")
    return folder


def clean_stale(out_dir: Path) -> list[Path]:
    """Remove the staging folders that killed exports left beside `out_dir`; returns what was removed.

    A previous bundle found in an abandoned `.old-` folder while `out_dir` is missing goes back first.
    """
    parent = out_dir.parent
    if not parent.is_dir():
        return []
    removed = []
    for kind in ("old", "partial"):
        prefix = f".{out_dir.name}.{kind}-"
        for folder in sorted(p for p in parent.iterdir() if p.name.startswith(prefix) and p.is_dir()):
            if not _abandoned(folder):
                continue
            if kind == "old" and (folder / "bundle").is_dir() and not out_dir.exists():
                os.replace(folder / "bundle", out_dir)
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _abandoned(folder: Path) -> bool:
    """True when the export that made `folder` is not running any more (on this host)."""
    try:
        host, pid = (folder / OWNER_FILE).read_text().split()
    except (OSError, ValueError):
        try:
            return time.time() - folder.stat().st_mtime > UNOWNED_STALE_S
        except OSError:
            return False
    if host != socket.gethostname():
        return False  # another machine's export on a shared folder: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError, OverflowError):
        return False
    return False


def swap_into_place(tmp: Path, out_dir: Path) -> None:
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; a bundle is meant to be shared
    if out_dir.exists() and _exchange(tmp, out_dir):
        shutil.rmtree(tmp, ignore_errors=True)  # `tmp` holds the previous bundle now
        return
    old = None
    if out_dir.exists():
        old = _owned_tempdir(out_dir, "old")
        os.replace(out_dir, old / "bundle")
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        if old is not None:
            os.replace(old / "bundle", out_dir)  # put the previous bundle back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the system or file system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EXDEV, errno.EPERM):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))
