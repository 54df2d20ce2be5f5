"""Run named stages in order; skip a stage whose inputs did not change since it last succeeded.

Each stage declares a fingerprint of its inputs (the spec fields it reads and the hashes of the
files it consumes). On success the runner writes `<out>/.stages/<name>.json` with that fingerprint
and the stage's figures; a rerun with the same fingerprint and existing outputs skips the stage.
Every event is appended to `<out>/status.jsonl` so line software can tail progress.
"""
from __future__ import annotations

import hashlib
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgesam_runtime.files import write_json_atomic
from edgesam.utils.status import append_status


class StageFailed(RuntimeError):
    """A pipeline stage raised: names the stage so the user knows where to look."""

    def __init__(self, stage: str, cause: BaseException):
        super().__init__(f"stage {stage!r} failed: {type(cause).__name__}: {cause}")
        self.stage, self.cause = stage, cause


@dataclass
class Stage:
    name: str
    run: Callable[[dict], dict]  # context -> figures (also stored into context[name])
    fingerprint: Callable[[dict], dict]  # context -> JSON-able description of the inputs
    outputs: Callable[[dict], list[Path]] = field(default=lambda ctx: [])
    always: bool = False  # rerun every time (the closing report reflects the whole run)


def fingerprint_digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


class StatusLog:
    """Appends one JSON line per event: time, stage, state, message, figures."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def event(self, stage: str, state: str, message: str = "", figures: dict | None = None) -> None:
        append_status(self.path, stage, state, message, figures)


def run_stages(stages: list[Stage], out: Path, context: dict, echo: Callable[[str], None] = print) -> dict:
    """Run `stages` in order, sharing `context`; returns {stage: {"figures", "seconds", "skipped"}}."""
    marks = out / ".stages"
    log = StatusLog(out / "status.jsonl")
    summary = {}
    for stage in stages:
        try:  # the fingerprint builds the stage's config: an error there is the stage's, named as such
            digest = fingerprint_digest(stage.fingerprint(context))
        except Exception as exc:
            log.event(stage.name, "failed", f"{type(exc).__name__}: {exc}", {"traceback": traceback.format_exc()})
            raise StageFailed(stage.name, exc) from exc
        mark = marks / f"{stage.name}.json"
        previous = json.loads(mark.read_text()) if mark.is_file() else None
        if not stage.always and previous and previous["fingerprint"] == digest and all(p.exists() for p in stage.outputs(context)):
            context[stage.name] = previous["figures"]
            context.setdefault("stage_seconds", {})[stage.name] = previous["seconds"]
            context.setdefault("skipped", set()).add(stage.name)
            summary[stage.name] = {"figures": previous["figures"], "seconds": previous["seconds"], "skipped": True}
            log.event(stage.name, "skipped", "inputs unchanged since the last successful run")
            echo(f"[{stage.name}] inputs unchanged: skipped (took {previous['seconds']:.1f} s last time)")
            continue
        echo(f"[{stage.name}] running")
        log.event(stage.name, "started")
        start = time.perf_counter()
        try:
            figures = stage.run(context) or {}
        except Exception as exc:
            log.event(stage.name, "failed", f"{type(exc).__name__}: {exc}", {"traceback": traceback.format_exc()})
            raise StageFailed(stage.name, exc) from exc
        seconds = time.perf_counter() - start
        context[stage.name] = figures
        context.setdefault("stage_seconds", {})[stage.name] = seconds
        write_json_atomic(mark, {"fingerprint": digest, "figures": figures, "seconds": seconds})
        summary[stage.name] = {"figures": figures, "seconds": seconds, "skipped": False}
        log.event(stage.name, "done", f"{seconds:.1f} s", figures)
        echo(f"[{stage.name}] done in {seconds:.1f} s")
    return summary
