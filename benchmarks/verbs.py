"""Running a verb as a user runs it, for the benchmark scripts: `python -m edgesam <verb> ...` in its own
process, so its figures include nothing the script set up; its wall and CPU time come back.

Scripts put the repository root on sys.path and import it: `from benchmarks.verbs import edgesam`.
"""
from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def edgesam(*args, **run_kwargs) -> dict:
    """Run `edgesam <args>` in a child process (a failure raises CalledProcessError); `run_kwargs` go to
    subprocess.run (cwd, env, output). Returns the command as shown and the child's wall and CPU time."""
    shown = " ".join(["edgesam", *map(str, args)])
    print("+ " + shown, flush=True)
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([sys.executable, "-m", "edgesam", *map(str, args)], check=True, **run_kwargs)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"command": shown, "wall_s": time.perf_counter() - start,
            "user_cpu_s": after.ru_utime - before.ru_utime, "sys_cpu_s": after.ru_stime - before.ru_stime}
