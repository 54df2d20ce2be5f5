"""Benchmark (CPU): what the OpenVINO runtime's static copies per call shape cost a line PC, in memory
and in the calls that meet a new box count, against dynamic-only (`Segmenter.open(static_shapes=0)`).

Each setting runs in its own fresh process on one bundle (a ROI model exported to OpenVINO bf16 and fp32):
`Segmenter.open` with its warm-up, then `--frames` frames of 8 boxes (a fixed-ROI line), then `--frames`
frames of 1-8 boxes drawn at random (boxes from a detector), encode + segment per frame. Recorded: resident
memory (VmRSS) after open and after each part, and the frame times (median, p95, slowest, and the second
half's median, once the copies exist). The script holds /tmp/edgesam-bench.lock itself. Results:
results/{--name}.{json,md}.

    .venv/bin/python benchmarks/cpu_backends/ov_static_memory.py \\
        --checkpoint runs/bench/distill/task_scratch60_seed0_embed/student.pth
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from benchmarks.records import save  # noqa: E402
HERE = Path(__file__).resolve().parent
MAX_BOXES = 8
# name: (Segmenter.open's static_shapes, OpenVINO's compiled-model cache: off, or warm from an earlier process)
SETTINGS = {"dynamic only (static_shapes=0)": (0, "off"), "static copies (default), first start": (None, "off"),
            "static copies (default), cache warm": (None, "warm"), "static_shapes=8, first start": (8, "off")}


def rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def frame_with_boxes(count: int, seed: int) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(seed)
    image = (rng.random((480, 640, 3)) * 255).astype(np.uint8)
    corners = rng.uniform(0, 270, (count, 2))
    sides = rng.uniform(16, 200, (count, 2))  # boxes stay inside the 640x480 frame
    return image, np.concatenate([corners, corners + sides], axis=1).tolist()


def worker(args) -> dict:
    from edgesam_runtime import Segmenter

    before = rss_mb()
    start = time.perf_counter()
    seg = Segmenter.open(args.bundle, graph_set=args.graph_set, backend="openvino", threads=args.threads,
                         static_shapes=SETTINGS[args.setting][0])
    out = {"open_s": time.perf_counter() - start, "rss_before_open_mb": before, "rss_after_open_mb": rss_mb(),
           "executed": seg.backend.execution_precision}

    def one(count: int, seed: int) -> float:
        image, boxes = frame_with_boxes(count, seed)
        t0 = time.perf_counter()
        seg.segment(seg.encode(image), boxes=boxes)
        return (time.perf_counter() - t0) * 1e3

    counts = np.random.default_rng(1).integers(1, MAX_BOXES + 1, args.frames)
    for scenario, plan in (("fixed", [MAX_BOXES] * args.frames), ("varying", counts.tolist())):
        times = [one(count, 1000 * i + count) for i, count in enumerate(plan)]
        tail = times[len(times) // 2:]
        out[scenario] = {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95)),
                         "slowest_ms": max(times), "second_half_median_ms": statistics.median(tail),
                         "boxes": int(sum(plan)), "rss_mb": rss_mb()}
    return out


def run_setting(args, setting: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--setting", setting, "--bundle", str(args.bundle),
           "--graph-set", args.graph_set, "--threads", str(args.threads), "--frames", str(args.frames)]
    cache = "off" if SETTINGS[setting][1] == "off" else str(args.work / "ov_cache")
    for _ in range(1 if cache == "off" else 2):  # a warm cache: the first process fills it
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "EDGESAM_OPENVINO_CACHE": cache})
        if done.returncode:
            raise SystemExit(f"{setting}: worker failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def export(checkpoint: Path, work: Path) -> Path:
    from edgesam.export import ExportConfig, export_bundle

    bundle = work / "bundle"
    export_bundle(str(checkpoint), bundle, ExportConfig(formats=("openvino",), precisions=("bf16", "fp32")))
    return bundle


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=REPO / "runs/bench/distill/task_scratch60_seed0_embed/student.pth")
    ap.add_argument("--graph-set", default="ov_bf16")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--frames", type=int, default=80, help="frames per scenario")
    ap.add_argument("--name", default="ov_static_memory")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--setting", help=argparse.SUPPRESS)
    ap.add_argument("--bundle", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return

    from benchmarks.cpu_backends.cpu_backends import bench_lock, command_line
    from edgesam_runtime.envinfo import machine_state

    with tempfile.TemporaryDirectory() as work, bench_lock():
        args.work = Path(work)
        args.bundle = export(args.checkpoint, args.work)
        result = {"command": command_line(argv), "checkpoint": str(args.checkpoint), "graph_set": args.graph_set,
                  "machine": {"cpu_line": machine_state()["cpu_line"], "load_average": os.getloadavg()},
                  "threads": args.threads, "frames": args.frames, "settings": {}}
        for setting in SETTINGS:
            result["settings"][setting] = run_setting(args, setting)
            print(setting, result["settings"][setting], flush=True)
        result["load_after"] = os.getloadavg()
    save(HERE / "results", args.name, result, report)


def report(result: dict) -> str:
    machine, settings = result["machine"], result["settings"]
    lines = [f"# OpenVINO static copies per call shape: memory and frame times ({result['graph_set']})",
             "", f"Command: `{result['command']}`", "", f"Model: `{result['checkpoint']}` (ROI framing).",
             f"CPU: {machine['cpu_line']}; {result['threads']} threads; load average before "
             f"{machine['load_average'][0]:.2f}, after {result['load_after'][0]:.2f}. Each setting in a fresh process; "
             "a first start runs with OpenVINO's compiled-model cache off, a warm cache is one an earlier process filled.",
             "", f"After `Segmenter.open` (with its warm-up): {result['frames']} frames of {MAX_BOXES} boxes (a fixed-ROI "
             f"line), then {result['frames']} frames of 1-{MAX_BOXES} boxes drawn at random (boxes from a detector); "
             "encode + segment per frame, 640x480. RSS: resident memory after each part.", "",
             "| setting | RSS after open (MB) | fixed: median / p95 / slowest frame (ms) | RSS (MB) | "
             "varying: median / p95 / slowest, second-half median (ms) | RSS (MB) | open (s) |",
             "|---|---|---|---|---|---|---|"]
    for name, s in settings.items():
        f, v = s["fixed"], s["varying"]
        lines.append(f"| {name} | {s['rss_after_open_mb']:.0f} | {f['median_ms']:.1f} / {f['p95_ms']:.1f} / "
                     f"{f['slowest_ms']:.0f} | {f['rss_mb']:.0f} | {v['median_ms']:.1f} / {v['p95_ms']:.1f} / "
                     f"{v['slowest_ms']:.0f}, {v['second_half_median_ms']:.1f} | {v['rss_mb']:.0f} | {s['open_s']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
