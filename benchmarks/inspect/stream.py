"""Benchmark: `edgesam inspect` on 200 magnetic-tile frames with 2 threads: frames/s and latency p50/p95/p99.

The frames are 200 labelled magnetic-tile images (the eval plan's order: classes take turns), each with a
boxes file of its ground-truth objects' tight boxes, gathered (as links) in a work folder outside the repo.
The verb runs as a user runs it, in its own process, with `--threads 2` (the backend's intra-op threads) and
`--cpu-threads 2`. Latency is the inspect call per frame (encode, segment, measure, judge) from the first
frame on; cold start adds opening the bundle. The CPU, its flags and the load average before and after are
recorded with the figures.

Reproduce (repo root; hold the lock, check `uptime` first):
  flock /tmp/edgesam-bench.lock python benchmarks/inspect/stream.py --bundle runs/bundle_s0 --work runs/stream200
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from places import DATA, HERE, REPO, shown  # noqa: E402

sys.path.insert(0, str(REPO))

from benchmarks.verbs import edgesam  # noqa: E402
from edgesam.data import load_dataset, tight_box  # noqa: E402
from edgesam_runtime.envinfo import machine_state  # noqa: E402
from edgesam.eval.plan import build_plan  # noqa: E402
from edgesam.eval.split import labelled_images  # noqa: E402

FRAMES = 200


def gather_frames(data: Path, work: Path, count: int) -> Path:
    """`count` labelled images as links in work/images, their boxes files in work/boxes."""
    images, boxes = work / "images", work / "boxes"
    images.mkdir(parents=True)
    boxes.mkdir()
    dataset = labelled_images(load_dataset(data))
    plan = build_plan(dataset, "box", seed=0, max_images=count)
    for item, sample in plan.samples():
        name = f"{item.class_name}_{sample.image_path.name}"  # stems repeat across classes
        (images / name).symlink_to(sample.image_path.resolve())
        entries = [{"box": tight_box(m).tolist(), "class": item.class_name} for m in sample.masks]
        (boxes / f"{Path(name).stem}.json").write_text(json.dumps(entries))
    return work


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--work", required=True, help="An empty folder outside the repo for the frames and the run.")
    ap.add_argument("--rules", default=str(HERE / "magnetic_tile_rules.yaml"))
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "results" / "stream.json"))
    args = ap.parse_args()

    work = gather_frames(Path(args.data), Path(args.work), FRAMES)
    before = machine_state()
    run = work / "run"
    verb = edgesam("--cpu-threads", args.threads, "inspect", shown(args.bundle), "--rules", shown(args.rules),
                   "--source", shown(work / "images"), "--boxes", shown(work / "boxes"), "--out", shown(run),
                   "--threads", args.threads, "--no-progress",
                   cwd=REPO, env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "runtime")])})
    summary = json.loads((run / "summary.json").read_text())
    result = {
        "frames": summary["frames"], "inspected": summary["inspected"], "bad_frames": summary["bad_frames"],
        "threads": args.threads, "frames_per_s": summary["frames_per_s"], "latency_ms": summary["latency_ms"],
        "stages_ms": summary["stages_ms"], "open_ms": summary["open_ms"], "cold_start_ms": summary["cold_start_ms"],
        "parts": summary["parts"], "defects": summary["defects"], "backend": summary["backend"],
        "graph_set": summary["graph_set"], "cpu": before["cpu"], "cpu_line": before["cpu_line"],
        "load_average_before": before["load_average"], "load_average_after": machine_state()["load_average"],
        "command": verb["command"], "bundle": shown(args.bundle),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    lat = result["latency_ms"]
    print(f"{result['inspected']} frames, {result['frames_per_s']:.2f} frames/s; latency p50 {lat['p50']:.1f} "
          f"p95 {lat['p95']:.1f} p99 {lat['p99']:.1f} ms; load {result['load_average_before']} -> "
          f"{result['load_average_after']}")


if __name__ == "__main__":
    main()
