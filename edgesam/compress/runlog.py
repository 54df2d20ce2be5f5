"""Run-dir files of the prune stage: status.jsonl (append-only, one write per line, tail-able by line
software), metrics.csv and config.yaml (atomic). Same line shape as the finetune run dirs."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from edgesam_runtime.files import write_text_atomic
from edgesam.utils.status import append_status


class RunLog:
    def __init__(self, run_dir: str | Path | None):
        self.dir = Path(run_dir) if run_dir is not None else None
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)

    def status(self, state: str, message: str = "", figures: dict | None = None, stage: str = "prune") -> None:
        if self.dir is None:
            return
        append_status(self.dir / "status.jsonl", stage, state, message, figures)

    def metrics(self, rows: list[dict], columns) -> None:
        if self.dir is None:
            return
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        write_text_atomic(self.dir / "metrics.csv", buf.getvalue())

    def text(self, name: str, content: str) -> None:
        if self.dir is not None:
            write_text_atomic(self.dir / name, content)
