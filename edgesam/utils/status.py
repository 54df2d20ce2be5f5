"""status.jsonl: the one event-line format every stage writes and line software tails.

One JSON object per line: time, stage, state, message, figures (+ labels such as init/strategy).
Each line goes out in a single append, so a reader never sees half a line; NaN/inf become null so
every line parses as strict JSON.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path


def finite(value):
    """JSON has no NaN/inf: replace them with None, recursively."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def append_status(path: str | Path, stage: str, state: str, message: str = "", figures: dict | None = None,
                  **labels) -> None:
    line = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "stage": stage, "state": state, "message": message,
            "figures": finite(figures or {}), **labels}
    with open(path, "a") as f:
        f.write(json.dumps(line, default=str) + "\n")
