"""CPU threads for the torch, ONNX Runtime and OpenVINO stages: every usable core, none spinning.

A line PC or a shared CI box is rarely idle, and it is idle again a second after a job ends. So:

- `OMP_WAIT_POLICY=PASSIVE` (training verbs: ACTIVE, `spin_waiting`) is set before torch's OpenMP runtime starts (it reads the variable once,
  when torch is first imported): idle workers sleep instead of spinning. ONNX Runtime's spinning is
  switched off per session (`no_spinning`; the runtime's sessions in `edgesam_runtime.backends.ort`).
  With sleeping workers a pool sized for every core costs a busy machine little (measured in
  benchmarks/contention: a demo under two competing busy processes used 0.86x its quiet CPU time).
- The thread count is, in order: an explicit request (`edgesam --cpu-threads N`), `$EDGESAM_THREADS`,
  `$OMP_NUM_THREADS` when the user set it, else every core this process may use (its affinity).
  It is never taken from the load average: the one-minute average stays near 1 for a minute or two
  after any job ends, and sizing from it ran every command started soon after another on one thread
  of an idle 2-core machine (half its speed, for the whole command).
- What is busy right now is a short sample of /proc/stat (`busy_cores`), recorded beside the count
  in `edgesam info` and every results header (`thread_record`), never used to shrink the pool: a
  long command outlives the job that was busy when it started.

Nothing here imports torch or numpy: the runtime and the CLI's start-up use it.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass

ENV_THREADS = "EDGESAM_THREADS"
# Thread pools that read their size from the environment when they start.
POOL_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# The most threads one stage may ask for: above any machine's core count, and far below what breaks the
# backends (ONNX Runtime and OpenVINO take a C int and fail in an unreadable way beyond it), so a typo'd
# or overflowing count is refused as a bad value instead of surfacing as a graph that "cannot load".
MAX_THREADS = 1024


_policy_is_ours = False  # whether OMP_WAIT_POLICY holds edgesam's default rather than the user's choice


def passive_waiting() -> None:
    """Idle OpenMP workers sleep instead of spinning (unless the user chose a policy)."""
    global _policy_is_ours
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        _policy_is_ours = True


def spin_waiting() -> None:
    """Idle OpenMP workers spin (unless the user chose a policy): for training, which owns the machine
    and runs thousands of small ops whose workers would otherwise fall asleep and wake between each
    (the scratch recipe on 2 cores: 0.78 s a step spinning, 2.6 s sleeping). Must run before torch is
    imported; line software and inference keep the passive default."""
    global _policy_is_ours
    if "OMP_WAIT_POLICY" not in os.environ or _policy_is_ours:
        os.environ["OMP_WAIT_POLICY"] = "ACTIVE"
        _policy_is_ours = True


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


def _cpu_times(stat_path: str, cpus: set[int] | None) -> tuple[int, int] | None:
    """(busy, total) jiffies summed over the `cpuN` lines of /proc/stat for `cpus` (all when None)."""
    try:
        with open(stat_path, encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    busy = total = 0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or not name[3:].isdigit():
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        values = [int(v) for v in fields[:8] if v.isdigit()]
        if len(values) < 5:
            continue
        idle = values[3] + values[4]  # idle + iowait
        total += sum(values)
        busy += sum(values) - idle
    return (busy, total) if total else None


def busy_cores(sample_s: float = 0.2, stat_path: str = "/proc/stat") -> float | None:
    """Cores busy right now among the usable ones: a `sample_s` sample of /proc/stat (None where there
    is none). This process sleeps while sampling, so what it counts is the other processes' work."""
    try:
        cpus = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = None
    first = _cpu_times(stat_path, cpus)
    if first is None:
        return None
    time.sleep(sample_s)
    second = _cpu_times(stat_path, cpus)
    if second is None or second[1] <= first[1]:
        return None
    share = (second[0] - first[0]) / (second[1] - first[1])
    return round(max(0.0, min(1.0, share)) * (len(cpus) if cpus else usable_cores()), 2)


def parse_threads(value: str | int | None, source: str) -> int | None:
    """'auto'/None/'' -> None, an integer in [1, MAX_THREADS] -> itself; anything else is an error naming `source`."""
    if value is None or str(value).strip().lower() in ("", "auto"):
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{source}: expected a positive number of threads or 'auto', got {value!r}")
    if n > MAX_THREADS:
        raise ValueError(f"{source}: expected at most {MAX_THREADS} threads or 'auto', got {value!r}")
    return n


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and where it came from (for headers: `describe`)."""

    threads: int
    source: str  # request | env:EDGESAM_THREADS | env:OMP_NUM_THREADS | usable cores

    def describe(self) -> str:
        why = {"request": "asked for (--cpu-threads / threads=)",
               f"env:{ENV_THREADS}": f"${ENV_THREADS}", "env:OMP_NUM_THREADS": "$OMP_NUM_THREADS set by the user",
               "usable cores": "every usable core (idle workers sleep, so a busy machine loses little)"}
        return f"{self.threads} thread{'s' if self.threads != 1 else ''}: {why.get(self.source, self.source)}"


_chosen: ThreadChoice | None = None  # what `configure` decided for this process


def choose_threads(requested: int | None = None) -> ThreadChoice:
    """The thread count a CPU stage should use and why (see the module docstring for the order)."""
    if requested:
        return ThreadChoice(int(requested), "request")
    if _chosen:
        return _chosen
    from_env = parse_threads(os.environ.get(ENV_THREADS), f"${ENV_THREADS}")
    if from_env:
        return ThreadChoice(from_env, f"env:{ENV_THREADS}")
    user_omp = parse_threads(os.environ.get("OMP_NUM_THREADS"), "$OMP_NUM_THREADS")
    if user_omp:
        return ThreadChoice(user_omp, "env:OMP_NUM_THREADS")
    return ThreadChoice(usable_cores(), "usable cores")


def cpu_threads(requested: int | None = None) -> int:
    """The thread count a CPU stage should use (see the module docstring for the order)."""
    return choose_threads(requested).threads


def thread_record(requested: int | None = None, sample_s: float = 0.2) -> dict:
    """What `edgesam info` and every results header say about threads: how many, why, and how busy
    the machine is right now (usable cores, cores busy over a short sample, the load average)."""
    choice = choose_threads(requested)
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {"threads": choice.threads, "source": choice.source, "why": choice.describe(),
            "usable_cores": usable_cores(), "busy_cores_now": busy_cores(sample_s), "load_average": load}


def configure(requested: int | None = None) -> int:
    """Size the thread pools of this process and stop OpenMP spinning; returns the thread count.

    Best called before torch is imported (the CLI does, before any verb loads torch); if torch is
    already loaded its intra-op pool is resized directly, but its wait policy stays as it started.
    """
    global _chosen
    _chosen = choose_threads(requested)
    n = _chosen.threads
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
    global _chosen, _policy_is_ours
    saved_env = {name: os.environ.get(name) for name in POOL_VARIABLES + ("OMP_WAIT_POLICY",)}
    saved_chosen, saved_ours = _chosen, _policy_is_ours
    torch = sys.modules.get("torch")
    saved_torch = torch.get_num_threads() if torch is not None else None
    try:
        yield configure(requested)
    finally:
        _chosen, _policy_is_ours = saved_chosen, saved_ours
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if saved_torch is not None:
            torch.set_num_threads(saved_torch)
