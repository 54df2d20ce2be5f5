"""Shared by the pruning benchmark scripts: environment record and atomic JSON + markdown output."""
from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

from edgesam.utils.environment import toolchain_environment
from edgesam_runtime.files import write_json_atomic, write_text_atomic

HERE = Path(__file__).resolve().parent
NOTE = ("Measured on a shared 2-core CPU: other engineers' processes may have been running (load averages "
        "recorded). Latencies are therefore noisy; ratios are measured side by side in one run "
        "(round-robin over the models), so they stay comparable.")


def context() -> dict:
    return {"command": " ".join([Path(sys.executable).name] + sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "loadavg_start": os.getloadavg(), "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "environment": toolchain_environment(), "note": NOTE}


def write(name: str, payload: dict, markdown) -> None:
    """JSON first (so a formatting slip never loses a measurement), then markdown = markdown(payload)."""
    payload["loadavg_end"] = os.getloadavg()
    write_json_atomic(HERE / f"{name}.json", payload)
    text = markdown(payload)
    write_text_atomic(HERE / f"{name}.md", text)
    print(text)
