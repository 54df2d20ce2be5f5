"""Encoder latency, teacher vs distilled student, side by side in ONNX Runtime (CPU, fp32, round-robin).

Pairs (teacher variant, student variant, input size), random weights (speed does not depend on the
values), each encoder exported with the bundle's own exporter:
  vit_b -> vit_t at 1024 px   the mechanical figure (expected >= 10x)
  vit_t -> vit_n at 128 px    the task figure's pair (target >= 2x; an ROI model runs its encoder once per
                              box, on a 128 px crop); --task-size for another size
With --teacher/--student checkpoints the real models are timed instead of the last pair.

The script takes /tmp/edgesam-bench.lock itself (waits while another benchmark holds it). Run it only
on a quiet machine, from the repo root:
  python benchmarks/distill/latency.py
"""
from __future__ import annotations

import argparse
import fcntl
import gc
import sys
import tempfile
from pathlib import Path

from common import TIMING_NOTE, context, machine_lines, write

LOCK = "/tmp/edgesam-bench.lock"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10, help="timed runs of the 1024 px pair")
    p.add_argument("--task-runs", type=int, default=200, help="timed runs of the task pair (milliseconds per call)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: all cores)")
    p.add_argument("--task-size", type=int, default=128)
    p.add_argument("--skip-vit-b", action="store_true", help="leave out the 1024 px vit_b pair (minutes per run)")
    p.add_argument("--teacher", help="teacher checkpoint (times it against --student)")
    p.add_argument("--student", help="student checkpoint")
    p.add_argument("--name", default="latency")
    args = p.parse_args()
    if bool(args.teacher) != bool(args.student):
        raise SystemExit("give both --teacher and --student, or neither")
    pairs = [] if args.skip_vit_b else [("vit_b", "vit_t", 1024, args.runs)]
    if args.teacher:
        pairs.append((args.teacher, args.student, None, args.task_runs))
    else:
        pairs.append(("vit_t", "vit_n", args.task_size, args.task_runs))
    with open(LOCK, "w") as lock:
        print(f"waiting for {LOCK} ...", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        ctx = context(note=TIMING_NOTE)  # load average once the lock is ours
        rows = [_pair(t, s, size, runs, args) for t, s, size, runs in pairs]
        write(args.name, {**ctx, "args": vars(args), "pairs": rows}, _markdown)


def _model(name: str, size: int | None):
    import torch

    from edgesam.models import arch_for, build_sam, load_model

    if Path(name).is_file():
        return load_model(None, name)
    torch.manual_seed(0)
    arch = arch_for(name, size)
    return build_sam(arch), arch


def _pair(teacher: str, student: str, size: int | None, runs: int, args) -> dict:
    from edgesam.compress.flops import encoder_flops
    from edgesam.compress.latency import export_encoders, time_sessions

    with tempfile.TemporaryDirectory(prefix="distill-latency-") as tmp:
        paths, info = {}, {}
        for role, name in (("teacher", teacher), ("student", student)):
            model, arch = _model(name, size)
            info[role] = {"model": name, "variant": arch.variant, "image_size": arch.image_size,
                          "encoder_gflops": encoder_flops(arch)["total"] / 1e9}
            paths.update(export_encoders({role: model}, Path(tmp)))
            del model
            gc.collect()
        sizes = {i["image_size"] for i in info.values()}
        if len(sizes) != 1:
            raise SystemExit(f"teacher and student run at different input sizes: {sorted(sizes)}")
        timed = time_sessions(paths, sizes.pop(), runs=runs, warmup=args.warmup, threads=args.threads,
                              low_memory=True)
    for role in info:
        info[role].update(timed[role])
    return {**info, "speedup_median": timed["teacher"]["median_ms"] / timed["student"]["median_ms"],
            "speedup_min": timed["teacher"]["min_ms"] / timed["student"]["min_ms"]}


def _markdown(p: dict) -> str:
    lines = ["# Encoder latency: teacher vs distilled student (ONNX Runtime CPU, fp32, round-robin)", ""]
    lines += machine_lines(p)
    lines += ["", f"Timed runs per pair: {p['pairs'][0]['teacher']['runs']}"
                  + "".join(f", {r['teacher']['runs']}" for r in p["pairs"][1:])
                  + f", after {p['args']['warmup']} warm-up; intra-op threads {p['args']['threads'] or 'all'}. "
                  "Under ROI framing the encoder runs once per box (a crop at the input size): the ratio holds per box.", "",
              "| teacher | student | input | teacher GFLOPs | student GFLOPs | teacher median ms | student median ms | "
              "speed-up (median) | speed-up (min) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in p["pairs"]:
        t, s = r["teacher"], r["student"]
        lines.append(f"| {t['variant']} | {s['variant']} | {t['image_size']} | {t['encoder_gflops']:.3g} | "
                     f"{s['encoder_gflops']:.3g} | {t['median_ms']:.1f} | {s['median_ms']:.1f} | "
                     f"{r['speedup_median']:.2f}x | {r['speedup_min']:.2f}x |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
