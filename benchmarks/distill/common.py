"""Shared by the distillation benchmarks: data path, machine record (CPU model, flags, load) and output files."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from edgesam_runtime.files import write_json_atomic, write_text_atomic

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_DATA = Path(os.environ.get("EDGESAM_MAGNETIC_TILE", REPO.parent / "shared" / "data" / "magnetic-tile"))
WORK = REPO / "runs" / "bench" / "distill"  # checkpoints, caches and run dirs: out of git
NOTE = ("Shared 2-core CPU: other engineers' processes may have been running (load averages recorded). "
        "Accuracy figures are seeded and do not depend on load; no timing figure here is a recorded result.")
TIMING_NOTE = ("Timings: meant to be recorded on a quiet machine under the bench lock; the load averages show how "
               "quiet it was. Ratios are measured side by side (round-robin), so they stay comparable.")


def cpu_record() -> dict:
    """CPU model, the SIMD flags that decide ONNX Runtime / torch kernels, core count (`edgesam_runtime.envinfo`'s record)."""
    from edgesam_runtime.envinfo import cpu_features

    cpu = cpu_features()
    return {"model": cpu["model"], "flags": cpu["flags"], "isa": cpu["isa"], "cpu_count": cpu["logical_cpus"]}


def source_record() -> dict:
    """Where the command ran: the repo's commit (and whether files differed from it), working folder,
    niceness and the thread variables that shape CPU runs."""
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "modified_files": None if status is None else bool(status),
            "cwd": os.getcwd(), "nice": os.nice(0),
            "threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "EDGESAM_THREADS") if k in os.environ}}


def context(argv: list[str] | None = None, note: str = NOTE) -> dict:
    from edgesam.utils.environment import toolchain_environment

    return {"command": " ".join(["python"] + (argv or sys.argv)), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "loadavg_start": [round(v, 2) for v in os.getloadavg()], "cpu": cpu_record(), "source": source_record(),
            "environment": toolchain_environment(), "note": note}


def machine_lines(p: dict) -> list[str]:
    flags = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in p["cpu"]["flags"].items())
    src = p.get("source")
    where = ([f"Ran in `{src['cwd']}` at commit {src['commit'] or 'unknown'}"
              + (" (with local changes)" if src["modified_files"] else "")
              + f", nice {src['nice']}, {', '.join(f'{k}={v}' for k, v in src['threads_env'].items()) or 'no thread variables'}.  "]
             if src else [])
    return [f"Command: `{p['command']}`  ", *where, f"CPU: {p['cpu']['model']} ({p['cpu']['cpu_count']} cores; {flags})  ",
            f"Started {p['started']}; load average at start {p['loadavg_start']}, at end {p['loadavg_end']}.  ",
            p["note"]]


def write(name: str, payload: dict, markdown) -> None:
    """JSON first (a formatting slip never loses a measurement), then markdown(payload)."""
    from edgesam.utils.status import finite

    payload["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    write_json_atomic(HERE / f"{name}.json", finite(payload))
    text = markdown(payload)
    write_text_atomic(HERE / f"{name}.md", text)
    print(text)


def random_teacher(variant: str, image_size: int | None, path: Path, seed: int = 0) -> Path:
    """The official architecture with random weights (seed), saved once: no pretrained weights reach this machine."""
    import torch

    from edgesam.models import arch_for, build_sam, save_checkpoint

    if path.is_file():
        return path
    torch.manual_seed(seed)
    arch = arch_for(variant, image_size)
    arch = arch.replace(extra={**arch.extra, "init": "random"})
    return save_checkpoint(build_sam(arch), path, arch, plain=False)
