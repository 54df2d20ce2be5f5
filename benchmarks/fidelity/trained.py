"""Benchmark (CPU): fp16, int8 and pruning fidelity of a model that segments, through the product's verbs.

On a trained checkpoint (default: the from-scratch recipe's seed-0 model written by
benchmarks/finetune/vit_t_scratch.py), this runs exactly what a user runs:

1. `edgesam export --precision fp32,fp16,int8` (int8 calibrated on magnetic-tile training images),
   then `edgesam bench` on the validation split: every precision's mask IoU against the PyTorch fp32
   reference (empty/empty pairs left out and counted) and its task mIoU against the ground truth;
2. `edgesam prune --head-ratio 0.25 --mlp-ratio 0.5` with recovery on the training split, exported fp32
   and benched against the *unpruned* checkpoint: IoU vs unpruned, task mIoU change, and the encoder
   speed-up (ONNX Runtime, both encoders in one bench run is not possible, so the prune report's
   side-by-side latency is used).

Results: results.json / results.md beside this script, with the CPU, its flags and the load average.
Latencies are only meaningful on a quiet machine; accuracy figures do not depend on load.

Reproduce (repo root):
  flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/fidelity/trained.py \\
      --checkpoint runs/bench/scratch/seed0.pth
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from benchmarks.verbs import edgesam  # noqa: E402
from benchmarks.records import flock_command, save  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("EDGESAM_MAGNETIC_TILE", REPO.parent / "shared" / "data" / "magnetic-tile"))
TARGETS = {"int8_iou": 0.97, "int8_miou_points": 1.0, "pruned_iou": 0.95, "pruned_miou_points": 2.0}


def calibration_images(out: Path, count: int) -> Path:
    """Training-split images only (the validation split scores the result)."""
    from edgesam.data import load_dataset
    from edgesam.eval import labelled_images, train_val

    train, _ = train_val(labelled_images(load_dataset(DATA)), 0.2, 0)
    out.mkdir(parents=True, exist_ok=True)
    step = max(1, len(train.records) // count)
    for record in train.records[::step][:count]:
        link = out / Path(record.image_path).name
        if not link.exists():
            link.symlink_to(Path(record.image_path).resolve())
    return out


def bench(bundle: Path, reference: Path, out: Path) -> dict:
    edgesam("bench", bundle, "--data", DATA, "--split", "val", "--reference", reference, "--max-images", 10_000,
            "--prompt", "box", "--out", out)
    return json.loads((out / "bench.json").read_text())


def rows_by_format(report: dict) -> dict:
    return {row["format"]: row for row in report["formats"]}


def main(argv=None) -> None:
    from edgesam.utils.environment import toolchain_environment

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=REPO / "runs/bench/scratch/seed0.pth")
    parser.add_argument("--work", type=Path, default=REPO / "runs/bench/fidelity")
    parser.add_argument("--calib-images", type=int, default=32)
    parser.add_argument("--recover-epochs", type=int, default=3)
    parser.add_argument("--render", action="store_true", help="only rewrite results.md from results.json")
    args = parser.parse_args(argv)
    if args.render:
        from edgesam_runtime.files import write_text_atomic

        write_text_atomic(HERE / "results.md", markdown(json.loads((HERE / "results.json").read_text())))
        return
    work = args.work
    load_before = os.getloadavg()

    calib = calibration_images(work / "calib", args.calib_images)
    bundle = work / "bundle"
    edgesam("export", "--checkpoint", args.checkpoint, "--out", bundle, "--precision", "fp32,fp16,int8",
            "--calib-data", calib, "--calib-max-images", args.calib_images, "--quiet")
    precisions = bench(bundle, args.checkpoint, work / "bench")

    pruned = work / "pruned.pth"
    edgesam("prune", "--checkpoint", args.checkpoint, "--head-ratio", 0.25, "--mlp-ratio", 0.5,
            "--calib-data", calib, "--recover-data", DATA, "--recover-epochs", args.recover_epochs,
            "--out", pruned, "--run-dir", work / "prune_run")
    prune_report = json.loads((work / "prune_run" / "report.json").read_text())
    edgesam("export", "--checkpoint", pruned, "--out", work / "bundle_pruned", "--precision", "fp32", "--quiet")
    pruned_bench = bench(work / "bundle_pruned", args.checkpoint, work / "bench_pruned")

    result = {"checkpoint": str(args.checkpoint), "environment": toolchain_environment(), "load_before": load_before,
              "load_after": os.getloadavg(), "precisions": rows_by_format(precisions),
              "pruned": rows_by_format(pruned_bench), "prune_report": prune_report, "targets": TARGETS,
              "command": flock_command(__file__)}
    save(HERE, "results", result, markdown)


def _cpu_line(env: dict) -> str:
    from edgesam_runtime.envinfo import describe_cpu

    return describe_cpu(env["cpu"])


def markdown(result: dict) -> str:
    ref = result["precisions"]["pytorch"]
    lines = ["# Fidelity on a model that segments (validation split, box prompts)", "",
             f"Checkpoint: `{result['checkpoint']}`. Command: `{result['command']}`", "",
             f"Machine: {_cpu_line(result['environment'])}; load average before "
             f"{result['load_before'][0]:.2f}, after {result['load_after'][0]:.2f}.", "",
             f"PyTorch fp32 reference: task mIoU {ref['task_iou']['mean']:.4f}, "
             f"{ref['empty']['prediction']} of {ref['prompts']} masks empty.", "",
             "| graph | IoU vs PyTorch fp32 | empty/empty pairs | task mIoU | change (points) |",
             "|---|---|---|---|---|"]
    for name, row in result["precisions"].items():
        if name == "pytorch" or "skipped" in row:
            continue
        lines.append(_row(name, row, ref))
    pruned = result["pruned"]
    lines += ["", "Pruned 25 % heads + 50 % MLP, recovered, exported fp32, against the unpruned PyTorch model:", "",
              "| graph | IoU vs unpruned | empty/empty pairs | task mIoU | change (points) |",
              "|---|---|---|---|---|"]
    for name, row in pruned.items():
        if name != "pytorch" and "skipped" not in row:
            lines.append(_row(f"pruned {name}", row, ref))
    latency = result["prune_report"].get("latency")
    if latency:
        lines += ["", f"Encoder (ONNX Runtime, side by side in the prune run): unpruned "
                      f"{latency['unpruned']['median_ms']:.1f} ms, pruned {latency['pruned']['median_ms']:.1f} ms "
                      f"({latency['speedup']:.2f}x); only meaningful at a low load average."]
    lines += ["", "The encoder's speed is the prune run's side-by-side figure: in ROI framing the bench's own encoder "
                  "column times only the frame hand-over (crops are encoded inside each segment call).",
              "", "Targets: int8 IoU vs fp32 >= 0.97 and task mIoU within 1 point; pruned + recovered IoU vs "
                  "unpruned >= 0.95 and task mIoU within 2 points.", ""]
    return "\n".join(lines)


def _row(name: str, row: dict, ref: dict) -> str:
    change = 100 * (row["task_iou"]["mean"] - ref["task_iou"]["mean"])
    empty = row.get("empty", {})
    return (f"| {name} | {row['iou_vs_reference']['mean']:.4f} | {empty.get('both', 0)} | {row['task_iou']['mean']:.4f} | "
            f"{change:+.2f} |")


if __name__ == "__main__":
    main()
