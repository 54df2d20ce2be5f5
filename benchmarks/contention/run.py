"""Benchmark (CPU): what a competing CPU load does to an edgesam command's CPU time and wall time.

The command (default: `edgesam demo`) runs twice per variant: on a quiet machine, and while
`--load N` processes spin on the CPU (default: one per usable core, as other jobs on a shared CI box
or a busy line PC would). For each run it records the command's own user and system CPU time (its
rusage, children included) and its wall time. With threads sized from the free cores and OpenMP
workers that sleep instead of spinning (edgesam's defaults), the user CPU under load should stay
within 2x of the quiet figure; the `previous` variant (a thread per core, libgomp's default spin before
sleeping) and the `spinning` one (workers that never sleep) show what those defaults avoid.

Reproduce on a quiet machine, from the repository root (the script takes /tmp/edgesam-bench.lock):
  .venv/bin/python benchmarks/contention/run.py --variants edgesam,previous
Smoke test (small command, a few minutes):
  .venv/bin/python benchmarks/contention/run.py --smoke
Results: benchmarks/contention/results/<label>.json and .md (CPU model and flags, load averages).
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
LOCK = "/tmp/edgesam-bench.lock"
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")
TARGET_RATIO = 2.0

# variant -> environment for the command. `edgesam`: its defaults (threads for the free cores, OpenMP
# workers that sleep while they wait). `previous`: what edgesam did before it sized threads: a thread
# per core and libgomp's default wait (spin about 3 ms, GOMP_SPINCOUNT=300000, before sleeping).
# `spinning`: workers that never sleep (OMP_WAIT_POLICY=ACTIVE), the worst case.
ALL_CORES = str(len(os.sched_getaffinity(0)))
VARIANTS = {
    "edgesam": {},
    "previous": {"GOMP_SPINCOUNT": "300000", "EDGESAM_THREADS": ALL_CORES},
    "spinning": {"OMP_WAIT_POLICY": "ACTIVE", "EDGESAM_THREADS": ALL_CORES},
}


def cpu_info() -> dict:
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    return {"model": fields.get("Model name", platform.processor()).strip(), "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)), "flags": {f: f in flags for f in FLAGS}}


def burners(n: int) -> list[subprocess.Popen]:
    """`n` processes that keep one core each busy (pure Python loops, no threads of their own)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def settle(max_wait_s: float, below: float = 0.5) -> None:
    """Wait (up to `max_wait_s`) for the one-minute load average to fall below `below`: the previous
    loaded run raises it for minutes, and edgesam sizes its threads from it."""
    deadline = time.monotonic() + max_wait_s
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(5.0)


def measure(command: list[str], env: dict, load: int) -> dict:
    """Run `command`; its wall time and its own rusage (user, sys), with `load` burners beside it."""
    load_before = os.getloadavg()
    procs = burners(load)
    try:
        time.sleep(2.0 if load else 0.0)  # let the burners take their cores
        # The command's output goes to a file: a pipe nobody reads while it runs fills up and blocks it.
        with tempfile.TemporaryFile() as log:
            start = time.perf_counter()
            child = subprocess.Popen(command, env={**os.environ, **env}, cwd=REPO, stdout=log, stderr=log)
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.perf_counter() - start
            log.seek(0)
            output = log.read().decode(errors="replace")
    finally:
        for p in procs:
            p.kill()
            p.wait()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {code}):\n{output[-3000:]}")
    return {"load_processes": load, "wall_s": wall, "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
            "loadavg_before": load_before, "loadavg_after": os.getloadavg()}


def default_command(workdir: Path, smoke: bool) -> list[str]:
    if not smoke:
        return [sys.executable, "-m", "edgesam", "demo", "--out", str(workdir / "demo")]
    # A short CPU stage: train the small model at 128 px on a synthetic set for a few steps.
    data = workdir / "data"
    if not data.exists():
        subprocess.run([sys.executable, "-m", "edgesam", "data", "synth", str(data), "--count", "16",
                        "--size", "128"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return [sys.executable, "-m", "edgesam", "finetune", "--model", "vit_t", "--init", "random",
            "--image-size", "128", "--data", str(data), "--epochs", "1", "--max-steps", "12", "--batch-size", "2",
            "--strategy", "full", "--out", str(workdir / "run")]


def fresh_outputs(workdir: Path) -> None:
    for name in ("demo", "run"):
        path = workdir / name
        if path.exists():
            subprocess.run(["rm", "-rf", str(path)], check=True)


def markdown(report: dict) -> str:
    lines = [f"# Contention: `{' '.join(report['command'])}`", "",
             f"CPU: {report['cpu']['model']}, {report['cpu']['usable_cores']} usable cores; flags "
             + ", ".join(f for f, on in report["cpu"]["flags"].items() if on) + ".",
             f"Competing load: {report['load']} busy processes. Target: user CPU under load within "
             f"{TARGET_RATIO:g}x of quiet.", "",
             "| variant | condition | wall s | user CPU s | sys CPU s | load avg before | user ratio loaded/quiet |",
             "|---|---|---|---|---|---|---|"]
    for variant, runs in report["runs"].items():
        ratio = runs["loaded"]["user_s"] / runs["quiet"]["user_s"] if len(runs) == 2 else None
        for condition in (c for c in ("quiet", "loaded") if c in runs):
            r = runs[condition]
            lines.append(f"| {variant} | {condition} | {r['wall_s']:.1f} | {r['user_s']:.1f} | {r['sys_s']:.1f} | "
                         f"{r['loadavg_before'][0]:.2f} | {f'{ratio:.2f}' if condition == 'loaded' and ratio else ''} |")
    lines += ["", f"Recorded {report['time']}; command run from {REPO}. A quiet machine is one whose load "
              "average before the quiet run is near 0: on a shared machine the quiet figures are not quiet."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="edgesam,previous", help="comma list of " + ", ".join(VARIANTS))
    parser.add_argument("--load", type=int, default=len(os.sched_getaffinity(0)), help="competing busy processes")
    parser.add_argument("--smoke", action="store_true", help="a short finetune instead of the demo")
    parser.add_argument("--label", default=None, help="results file name [demo | smoke]")
    parser.add_argument("--settle-s", type=float, default=180.0,
                        help="before a quiet run, wait up to this long for the load average to fall below 0.5")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND... to measure instead")
    args = parser.parse_args()
    command = [c for c in args.command if c != "--"]
    label = args.label or ("custom" if command else "smoke" if args.smoke else "demo")
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with tempfile.TemporaryDirectory(prefix="edgesam-contention-") as tmp:
            workdir = Path(tmp)
            command = command or default_command(workdir, args.smoke)
            report = {"command": command, "cpu": cpu_info(), "load": args.load, "python": sys.version.split()[0],
                      "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "runs": {}}
            for variant in args.variants.split(","):
                report["runs"][variant] = {}
                for condition, load in (("quiet", 0), ("loaded", args.load)):
                    fresh_outputs(workdir)
                    if not load:
                        settle(args.settle_s)
                    print(f"[contention] {variant}, {condition}: {' '.join(command)}", file=sys.stderr, flush=True)
                    report["runs"][variant][condition] = measure(command, VARIANTS[variant], load)
                    print(f"[contention]   {json.dumps(report['runs'][variant][condition])}", file=sys.stderr)
                    save(report, label)  # after every run: a long benchmark that is stopped keeps what it measured
    print(markdown(report))


def save(report: dict, label: str) -> None:
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"{label}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{label}.md").write_text(markdown(report))


if __name__ == "__main__":
    main()
