"""How a benchmark script records its result: the command that reproduces it, and the JSON + Markdown pair
written beside the script (atomically, so a killed run leaves the previous record whole).

Scripts put the repository root on sys.path and import it: `from benchmarks.records import flock_command, save`.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Callable

from edgesam_runtime.files import write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[1]
LOCK = "/tmp/edgesam-bench.lock"  # every timing benchmark holds it, so two never overlap


def flock_command(script: str | Path, argv: list[str] | None = None) -> str:
    """The command a results file records for a script run under the benchmark lock by `flock` (repository-relative), with
    this process's arguments unless `argv` is given."""
    relative = Path(script).resolve().relative_to(REPO)
    args = sys.argv[1:] if argv is None else argv
    return f"flock {LOCK} .venv/bin/python {relative.as_posix()} " + " ".join(map(shlex.quote, map(str, args)))


def save(folder: Path, stem: str, result: dict, markdown: Callable[[dict], str]) -> str:
    """Write `folder/stem.json` and `folder/stem.md` (markdown(result)), print the Markdown and return it."""
    text = markdown(result)
    write_json_atomic(folder / f"{stem}.json", result)
    write_text_atomic(folder / f"{stem}.md", text)
    print(text)
    return text
