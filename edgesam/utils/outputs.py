"""Where a verb may write: never over files edgesam did not write.

- An output file that exists is refused unless the user says `--overwrite`.
- An output folder is used when it does not exist, is empty, or was made by the same edgesam verb
  (it holds `OWNER_MARK`, which records the verb); anything else is refused unless `--overwrite`.
  With `--overwrite` a verb writes its own files into the folder, replacing same-named ones; it
  never removes the others.

The CLI calls these before a verb does any work, so a refusal costs nothing. (Bundles are recognised
by their manifest instead: `edgesam.export.staging`.)
"""
from __future__ import annotations

from pathlib import Path

from edgesam_runtime.files import write_text_atomic

OWNER_MARK = ".edgesam-output"
_SHOWN = 3


class OutputExistsError(ValueError):
    """An output path that holds files edgesam did not write (names it and the way out)."""


def check_new_file(path: str | Path, overwrite: bool = False, flag: str = "--out") -> Path:
    """Refuse an existing `path` unless `overwrite`; a folder there is refused always."""
    path = Path(path)
    if path.is_dir():
        raise OutputExistsError(f"{path}: is a folder; {flag} expects a file to write")
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: exists; refusing to replace it (pass --overwrite to replace it, "
                                f"or choose another {flag})")
    return path


def write_new_file(path: str | Path, text: str, overwrite: bool = False, flag: str = "--out") -> Path:
    """`check_new_file`, then write `text` atomically."""
    write_text_atomic(check_new_file(path, overwrite, flag), text)
    return Path(path)


def owner(folder: Path) -> str | None:
    """The verb whose output `folder` is (from its OWNER_MARK), or None."""
    try:
        return (Path(folder) / OWNER_MARK).read_text().split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return None


def claim_folder(folder: str | Path, verb: str, overwrite: bool = False, flag: str = "--out") -> Path:
    """Make `folder` the output folder of `verb` (created, marked), or refuse it (see the module docstring)."""
    folder = Path(folder)
    fresh = not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"{folder}: exists and is not a folder; choose another {flag}")
    if folder.is_dir() and not overwrite:
        found = sorted(p.name for p in folder.iterdir() if p.name != OWNER_MARK)
        made_by = owner(folder)
        if found and made_by != verb:
            whose = f"written by `edgesam {made_by}`" if made_by else "edgesam did not write"
            shown = ", ".join(found[:_SHOWN]) + (f" and {len(found) - _SHOWN} more" if len(found) > _SHOWN else "")
            raise OutputExistsError(
                f"{folder}: holds files {whose} ({shown}); refusing to write into it (choose another {flag}, "
                f"or pass --overwrite to write {verb}'s files into it: same-named files are replaced, no other is removed)")
    existed = folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    if fresh:  # a folder the user filled stays theirs, even after one --overwrite
        write_text_atomic(folder / OWNER_MARK, f"{verb}\n")
        if not existed:
            _CLAIMED.append(folder)
    return folder


_CLAIMED: list[Path] = []  # folders claim_folder created in this process


def release_unused() -> None:
    """Remove the folders `claim_folder` created that hold nothing but their mark (the verb failed, or
    wrote nothing): a failed command leaves no empty output folder behind."""
    while _CLAIMED:
        folder = _CLAIMED.pop()
        try:
            if [p.name for p in folder.iterdir()] == [OWNER_MARK]:
                (folder / OWNER_MARK).unlink()
                folder.rmdir()
        except OSError:
            pass  # gone already, or not ours to tidy any more
