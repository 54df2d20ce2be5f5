"""CPU threads for the torch and ONNX Runtime stages: as many as the machine has free, none spinning.

A line PC or a shared CI box is rarely idle. Two things make a CPU stage many times slower there:
worker threads that busy-wait between parallel regions (OpenMP's default) burn the cores the other
processes need, and a thread pool sized for every core keeps being preempted. So:

- `OMP_WAIT_POLICY=PASSIVE` is set before torch's OpenMP runtime starts (it reads the variable once,
  when torch is first imported): idle workers sleep instead of spinning. ONNX Runtime's spinning is
  switched off per session (`no_spinning`; the runtime's sessions in `edgesam_runtime.backends.ort`).
- The thread count is, in order: an explicit request (`edgesam --cpu-threads N`), `$EDGESAM_THREADS`,
  `$OMP_NUM_THREADS` when the user set it, else the cores this process may use minus the one-minute
  load average (at least 1).

Nothing here imports torch or numpy: the runtime and the CLI's start-up use it.
"""
from __future__ import annotations

import contextlib
import os
import sys

ENV_THREADS = "EDGESAM_THREADS"
# Thread pools that read their size from the environment when they start.
POOL_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def passive_waiting() -> None:
    """Idle OpenMP workers sleep instead of spinning (unless the user chose a policy)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def no_spinning(session_options):
    """ONNX Runtime session options whose idle pool threads sleep (ORT spins by default and has no
    environment variable for it: every session edgesam opens goes through this or the runtime's own)."""
    session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return session_options


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers and taskset restrict)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def free_cores() -> int:
    """Usable cores minus the one-minute load average, at least 1.

    The load average counts runnable processes (ours included once we run), so on a quiet machine
    this is every core and on a saturated one it is 1: a thread that finds no free core only waits.
    """
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    return max(1, min(cores, int(cores - load + 0.5)))


def parse_threads(value: str | int | None, source: str) -> int | None:
    """'auto'/None/'' -> None, a positive integer -> itself; anything else is an error naming `source`."""
    if value is None or str(value).strip().lower() in ("", "auto"):
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{source}: expected a positive number of threads or 'auto', got {value!r}")
    return n


_chosen: int | None = None  # what `configure` decided for this process


def cpu_threads(requested: int | None = None) -> int:
    """The thread count a CPU stage should use (see the module docstring for the order)."""
    if requested:
        return int(requested)
    if _chosen:
        return _chosen
    from_env = parse_threads(os.environ.get(ENV_THREADS), f"${ENV_THREADS}")
    if from_env:
        return from_env
    user_omp = parse_threads(os.environ.get("OMP_NUM_THREADS"), "$OMP_NUM_THREADS")
    return user_omp or free_cores()


def configure(requested: int | None = None) -> int:
    """Size the thread pools of this process and stop OpenMP spinning; returns the thread count.

    Best called before torch is imported (the CLI does, before any verb loads torch); if torch is
    already loaded its intra-op pool is resized directly, but its wait policy stays as it started.
    """
    global _chosen
    n = _chosen = cpu_threads(requested)
    passive_waiting()
    for name in POOL_VARIABLES:
        if requested or name not in os.environ:
            os.environ[name] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    return n


@contextlib.contextmanager
def configured(requested: int | None = None):
    """`configure` for the length of a block, then put the environment and torch's pool back.

    The CLI runs its verbs inside this, so calling it in-process (tests, notebooks) leaves the
    caller's thread settings as they were.
    """
    global _chosen
    saved_env = {name: os.environ.get(name) for name in POOL_VARIABLES + ("OMP_WAIT_POLICY",)}
    saved_chosen = _chosen
    torch = sys.modules.get("torch")
    saved_torch = torch.get_num_threads() if torch is not None else None
    try:
        yield configure(requested)
    finally:
        _chosen = saved_chosen
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if saved_torch is not None:
            torch.set_num_threads(saved_torch)
