"""Run `edgesam` in a child process and SIGKILL it when a condition is met (for the kill tests)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def edgesam_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "edgesam", "--cpu-threads", "1", *args]


def child_env() -> dict:
    """This checkout's edgesam and edgesam_runtime first on the path, one thread (as the tests in this process use)."""
    path = os.pathsep.join(p for p in (str(REPO), str(REPO / "runtime"), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def kill_when(args: list[str], condition, log: Path, timeout_s: float = 300.0, poll_s: float = 0.01) -> None:
    """Start `args`; SIGKILL it as soon as `condition()` is true. Fails if it ends or times out first."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=child_env(), cwd=REPO)
        deadline = time.monotonic() + timeout_s
        try:
            while not condition():
                if proc.poll() is not None:
                    raise AssertionError(f"{' '.join(args)} ended (exit {proc.returncode}) before it could be "
                                         f"killed:\n{log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"{' '.join(args)}: condition not met in {timeout_s} s")
                time.sleep(poll_s)
            proc.send_signal(signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, log.read_text()[-3000:])
