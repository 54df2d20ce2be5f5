"""A ROI-framed model end to end per box, 8 boxes per frame, as line software calls it: today's code
(a source tree given with --baseline-src, e.g. `git archive main`) against this checkout, on the
same bundle, machine and frames, each configuration in its own fresh process.

Per configuration (a graph set on a backend, run by one source tree):
- time: every frame of the validation split (finetune's split: --val-fraction, --split-seed) gets 8
  boxes: its ground-truth boxes, cycled, each copy moved by a few pixels (a fixed seed), so one
  `segment` call answers 8 prompts, as on a line with several defects per part. Per box = (encode +
  segment wall time) / 8. The process warms the first frame until its timings settle (the last 3
  calls within 10 % of their median), then times every frame, once per pass. Reported: p50 and
  spread ((p95 - p5) / p50) per box, and the median of each part the runtime reports (preprocess,
  prompt and crops, encoder, decoder, refiner, paste-back) per box.
- accuracy: the validation split with one ground-truth box per defect (`edgesam eval`'s plan): task
  mIoU, and mask IoU against today's ONNX Runtime fp32 masks where those are non-empty.

Targets (checked in the results): on a CPU with AVX-512 the fastest configuration at <= 2.5 ms p50
per box (<= 3.5 ms on AVX2-only), >= 2x today's default (ONNX Runtime fp32, today's code), task mIoU
within 0.5 point of today's.

    git archive main | tar -x -C /tmp/edgesam-main        # today's code
    .venv/bin/python benchmarks/cpu_backends/roi_per_box.py --checkpoint runs/roi/best.pth \\
        --baseline-src /tmp/edgesam-main --name roi_scratch_seed0

A smaller ROI model distilled from the shipped one (`edgesam distill`) is compared with what today's code runs
by giving the shipped model as --baseline-checkpoint: today's configurations then run its bundle, and task
mIoU and mask IoU are measured against it.

The script holds /tmp/edgesam-bench.lock for the whole run (see cpu_backends.py). The bundle is
exported once by this checkout under --work (ONNX fp32 / static int8 and OpenVINO fp32 / bf16 / int8).
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

BOXES_PER_FRAME = 8
TARGET_MS = {"avx512": 2.5, "avx2": 3.5}
TARGET_SPEEDUP = 2.0
TASK_MIOU_POINTS = 0.5
IOU_TARGET = 0.97
# name: (graph set, backend); today's default is ort_fp32 (Segmenter.open's fp32 set, auto -> ONNX Runtime)
CONFIGS = {
    "ort_fp32": ("fp32", "onnxruntime"), "ort_int8": ("int8", "onnxruntime"), "ov_on_ort_int8": ("int8", "openvino"),
    "ov_fp32": ("ov_fp32", "openvino"), "ov_bf16": ("ov_bf16", "openvino"), "ov_int8": ("ov_int8", "openvino"),
}
BASELINE = ("today", "ort_fp32")


# --- worker: runs inside a fresh process with the source tree under test first on sys.path --------------
def frame_boxes(item, count: int, seed: int, hw) -> np.ndarray:
    """`count` boxes for one frame: the image's ground-truth boxes cycled, each copy but the first moved
    by up to 10 % of its side (a fixed seed per image; kept inside the frame), so no two prompts are the same."""
    rng = np.random.default_rng(seed)
    base = np.asarray(item.boxes, np.float32)
    boxes = base[np.arange(count) % len(base)].copy()
    side = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0)
    jitter = rng.uniform(-0.1, 0.1, (count, 2)) * side
    jitter[: len(base)] = 0.0
    boxes[:, :2] += jitter
    boxes[:, 2:] += jitter
    h, w = hw
    return np.clip(boxes, 0, [w - 1, h - 1, w - 1, h - 1]).astype(np.float32)


def settle(call, window: int = 3, tolerance: float = 0.10, min_calls: int = 3, max_calls: int = 30) -> dict:
    times = []
    while len(times) < max_calls:
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
        last = times[-window:]
        mid = statistics.median(last)
        if len(times) >= min_calls and all(abs(t - mid) <= tolerance * mid for t in last):
            return {"calls": len(times), "settled": True, "ms": [round(t, 3) for t in times]}
    return {"calls": len(times), "settled": False, "ms": [round(t, 3) for t in times]}


def worker(args) -> dict:
    from edgesam.eval.adapters import SegmenterAdapter
    from edgesam.eval.plan import build_plan
    from edgesam.eval.scoring import score
    from edgesam.eval.split import scoring_set

    import edgesam

    # The tree under test decides which runtime runs: its own runtime/ distribution, or, in a tree from
    # before the split, the runtime inside edgesam. Never the installed edgesam_runtime of another tree
    # (an editable install of this checkout is importable from any tree).
    tree = Path(edgesam.__file__).resolve().parents[1]
    if (tree / "runtime" / "edgesam_runtime").is_dir():
        from edgesam_runtime import Segmenter
    else:
        from edgesam.runtime import Segmenter
    runtime_source = str(Path(sys.modules[Segmenter.__module__].__file__).resolve())
    if not runtime_source.startswith(str(tree)):
        raise SystemExit(f"{tree}: its runtime would come from {runtime_source}")

    graph_set, backend = CONFIGS[args.config]
    seg = Segmenter.open(args.bundle, graph_set=graph_set, backend=backend, threads=args.threads, warmup=False)
    plan = build_plan(scoring_set(args.data, "val", args.val_fraction, args.split_seed), "box", seed=0)
    frames = [(sample.image, frame_boxes(item, BOXES_PER_FRAME, 1000 + i, sample.image.shape[:2]))
              for i, (item, sample) in enumerate(plan.samples())]

    def one(frame):
        image, boxes = frame
        embedding = seg.encode(image)
        result = seg.segment(embedding, boxes=boxes)
        return {**embedding.timings, **result.timings}

    warm = settle(lambda: one(frames[0]))
    per_box, parts = [], []
    for frame in frames:
        start = time.perf_counter()
        timings = one(frame)
        per_box.append((time.perf_counter() - start) * 1e3 / BOXES_PER_FRAME)
        parts.append({k: v / BOXES_PER_FRAME for k, v in timings.items()})
    out = {"config": args.config, "source": str(tree), "runtime_source": runtime_source, "per_box_ms": per_box,
           "parts_per_box_ms": parts, "warmup": warm, "frames": len(frames), "providers": seg.providers,
           "threads": getattr(getattr(seg, "threads", None), "threads", args.threads),
           "executed": getattr(seg.backend, "execution_precision", None)}
    if args.accuracy:
        records = score(SegmenterAdapter(seg), plan, keep_masks=True)
        out["task_miou"] = float(np.nanmean([r.iou for r in records]))
        out["prompts"] = len(records)
        np.savez_compressed(args.masks, *[r.mask for r in records])
    return out


# --- parent ------------------------------------------------------------------------------------------
def run_worker(src: Path, config: str, args, accuracy: bool, masks: Path) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_path = Path(handle.name)
    bundle = args.baseline_bundle if src != REPO else args.bundle
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--config", config, "--bundle", str(bundle),
           "--data", args.data, "--val-fraction", str(args.val_fraction), "--split-seed", str(args.split_seed),
           "--masks", str(masks), "--result", str(result_path)]
    cmd += ["--accuracy"] if accuracy else []
    cmd += ["--threads", str(args.threads)] if args.threads else []
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "EDGESAM_THREADS")}
    # the tree under test decides which edgesam (and, where it has one, which runtime/) is imported
    env["PYTHONPATH"] = os.pathsep.join([str(src), str(src / "runtime")])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(src))
    if proc.returncode != 0:
        raise RuntimeError(f"{src.name} {config} failed:\n{proc.stderr[-4000:]}")
    result = json.loads(result_path.read_text())
    result_path.unlink()
    return result


def mask_agreement(reference: Path, other: Path) -> dict:
    ref, got = np.load(reference), np.load(other)
    ious, went_empty = [], 0
    for key in ref.files:
        a, b = ref[key], got[key]
        if not a.any():
            continue  # an IoU against an empty reference proves nothing
        went_empty += int(not b.any())
        ious.append(float((a & b).sum() / (a | b).sum()))
    return {"mask_iou_mean": float(np.mean(ious)) if ious else None, "mask_iou_min": float(np.min(ious)) if ious else None,
            "masks_compared": len(ious), "masks_total": len(ref.files), "empty_where_reference_not": went_empty}


def summarize(runs: list[dict]) -> dict:
    from edgesam_runtime.timing import percentile, spread

    per_box = [t for run in runs for t in run["per_box_ms"]]
    parts = {}
    for key in sorted({k for run in runs for p in run["parts_per_box_ms"] for k in p}):
        parts[key] = statistics.median([p.get(key, 0.0) for run in runs for p in run["parts_per_box_ms"]])
    return {"per_box_ms_p50": percentile(per_box, 50), "per_box_ms_p95": percentile(per_box, 95), "spread": spread(per_box),
            "parts_per_box_ms_median": parts, "samples": len(per_box), "warmup": [r["warmup"] for r in runs],
            "providers": runs[0]["providers"], "executed": runs[0]["executed"], "threads": runs[0]["threads"]}


def host_ms(parts: dict) -> float:
    """Per box work on the host: preprocess, prompt mapping and crops, paste-back."""
    return sum(parts.get(k, 0.0) for k in ("preprocess_ms", "prompt_ms", "postprocess_ms"))


def verdict(rows: dict, cpu: dict) -> dict:
    klass = "avx512" if (cpu.get("flags") or {}).get("avx512f") else "avx2"
    today = rows["today/ort_fp32"]
    best, best_ms = None, None
    for name, row in rows.items():
        if not name.startswith("now/"):
            continue
        accurate = (row.get("mask_iou_mean") or 0) >= IOU_TARGET and \
            abs(100 * (row["task_miou"] - today["task_miou"])) <= TASK_MIOU_POINTS
        if accurate and (best_ms is None or row["per_box_ms_p50"] < best_ms):
            best, best_ms = name, row["per_box_ms_p50"]
    speedup = today["per_box_ms_p50"] / best_ms if best else None
    return {"cpu_class": klass, "target_ms": TARGET_MS[klass], "target_speedup": TARGET_SPEEDUP,
            "task_miou_points": TASK_MIOU_POINTS, "iou_target": IOU_TARGET, "fastest_accurate": best,
            "per_box_ms_p50": best_ms, "speedup_vs_today": speedup,
            "met": bool(best and best_ms <= TARGET_MS[klass] and speedup >= TARGET_SPEEDUP)}


def to_markdown(r: dict) -> str:
    from edgesam_runtime.envinfo import threads_line

    start, end, v = r["machine_start"], r["machine_end"], r["verdict"]
    lines = [f"# ROI model per box, {BOXES_PER_FRAME} boxes per frame: {r['name']}", "", f"Model: {r['model']}. Command:", "",
             f"    {r['command']}", "",
             f"CPU: {start['cpu_line']} (isa {start['cpu']['isa']}, {start['cpu']['logical_cpus']} logical CPUs). "
             f"Load average at start {start['load_average']}, at end {end['load_average']}.",
             f"Threads: {threads_line(start['threads'])}.",
             f"{r['frames']} frames (validation split) x {BOXES_PER_FRAME} boxes, {r['passes']} passes, each configuration "
             f"in a fresh process per pass, warmed until settled; accuracy on the validation split, {r['prompts']} box "
             "prompts (one per defect). `today` is the code given with --baseline-src, `now` this checkout.", "",
             "| source/configuration | per box p50 ms | p95 | spread | vs today | host ms | encoder ms | decoder ms "
             "| refiner ms | task mIoU (pts vs today) | mask IoU vs today (mean / min, n) | ran as |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    today = r["rows"]["today/ort_fp32"]
    for name, row in sorted(r["rows"].items(), key=lambda kv: kv[1]["per_box_ms_p50"]):
        p = row["parts_per_box_ms_median"]
        iou = "-" if row.get("mask_iou_mean") is None else \
            f"{row['mask_iou_mean']:.4f} / {row['mask_iou_min']:.4f}, {row['masks_compared']}"
        lines.append(f"| {name} | {row['per_box_ms_p50']:.2f} | {row['per_box_ms_p95']:.2f} | {row['spread']:.0%} | "
                     f"{today['per_box_ms_p50'] / row['per_box_ms_p50']:.2f}x | {host_ms(p):.2f} | "
                     f"{p.get('encoder_ms', 0):.2f} | {p.get('decoder_ms', 0):.2f} | {p.get('refiner_ms', 0):.2f} | "
                     f"{row['task_miou']:.4f} ({100 * (row['task_miou'] - today['task_miou']):+.2f}) | {iou} | "
                     f"{row['executed'] or '-'} |")
    lines += ["", "Parts per box are medians of the runtime's own timings divided by the boxes of the call: host = "
              "preprocess + prompt mapping and crops + paste-back; encoder = the crops' encoder batch; refiner = the "
              "mask refiner after the decoder. Mask IoU counts only prompts whose today/ort_fp32 mask is non-empty.", "",
              f"Target ({v['cpu_class']} CPU): fastest configuration of this checkout with mask IoU >= {v['iou_target']} "
              f"and task mIoU within {v['task_miou_points']} point of today's at <= {v['target_ms']} ms p50 per box and "
              f">= {v['target_speedup']}x today's: **{'met' if v['met'] else 'not met'}** ({v['fastest_accurate']}: "
              f"{v['per_box_ms_p50'] and round(v['per_box_ms_p50'], 2)} ms, "
              f"{v['speedup_vs_today'] and round(v['speedup_vs_today'], 2)}x)."]
    return "\n".join(lines) + "\n"


def build_bundle(work: Path, checkpoint: str, data: str) -> Path:
    from benchmarks.cpu_backends.cpu_backends import build_bundle as build

    return build(work, "vit_t", None, checkpoint, 8, Path(data))


def parent(args) -> int:
    from benchmarks.cpu_backends.cpu_backends import LOCK, bench_lock, command_line
    from edgesam_runtime.envinfo import environment, machine_state
    from edgesam_runtime.files import write_json_atomic, write_text_atomic

    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    baseline_configs = [n.strip() for n in args.baseline_configs.split(",") if n.strip()]
    if set(names + baseline_configs) - set(CONFIGS) or "ort_fp32" not in baseline_configs:
        raise SystemExit(f"--configs/--baseline-configs: choose from {', '.join(CONFIGS)}; the baseline needs ort_fp32")
    work = Path(args.work) / args.name
    work.mkdir(parents=True, exist_ok=True)
    runs_of = [("today", Path(args.baseline_src), c) for c in baseline_configs] + [("now", REPO, c) for c in names]
    with bench_lock(args.lock or LOCK):
        args.bundle = build_bundle(work, args.checkpoint, args.data)
        # today's code runs the model users ship today: the same one, or (--baseline-checkpoint) e.g. the
        # teacher a smaller ROI model was distilled from, exported by this checkout into its own folder
        if args.baseline_checkpoint:
            (work / "baseline").mkdir(exist_ok=True)
        args.baseline_bundle = args.bundle if not args.baseline_checkpoint else \
            build_bundle(work / "baseline", args.baseline_checkpoint, args.data)
        start_state = machine_state(args.threads)
        results: dict[str, list] = {f"{tag}/{c}": [] for tag, _, c in runs_of}
        for p in range(args.passes):
            for tag, src, config in (runs_of if p % 2 == 0 else runs_of[::-1]):
                key = f"{tag}/{config}"
                got = run_worker(src, config, args, accuracy=p == 0, masks=work / f"{tag}_{config}.npz")
                results[key].append(got)
                print(f"pass {p + 1} {key}: per box p50 {statistics.median(got['per_box_ms']):.2f} ms", flush=True)
        end_state = machine_state(args.threads)
    rows = {}
    for key, runs in results.items():
        tag, config = key.split("/")
        rows[key] = {**summarize(runs), "task_miou": runs[0]["task_miou"], "prompts": runs[0]["prompts"],
                     "source": runs[0]["source"], "runtime_source": runs[0].get("runtime_source"),
                     **mask_agreement(work / "today_ort_fp32.npz", work / f"{tag}_{config}.npz")}
    model = f"checkpoint {args.checkpoint}" + (f" (today's code runs checkpoint {args.baseline_checkpoint})"
                                              if args.baseline_checkpoint else "")
    result = {"name": args.name, "model": model, "command": command_line(None),
              "bundle": str(args.bundle), "frames": results["today/ort_fp32"][0]["frames"],
              "prompts": rows["today/ort_fp32"]["prompts"], "passes": args.passes, "boxes_per_frame": BOXES_PER_FRAME,
              "machine_start": start_state, "machine_end": end_state, "rows": rows,
              "verdict": verdict(rows, start_state["cpu"]), "environment": environment()}
    out = Path(args.out)
    write_json_atomic(out / f"{args.name}.json", result)
    write_text_atomic(out / f"{args.name}.md", to_markdown(result))
    print(to_markdown(result))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", help="the ROI recipe's trained checkpoint")
    ap.add_argument("--baseline-src", help="a source tree holding today's edgesam package (e.g. `git archive main`)")
    ap.add_argument("--baseline-checkpoint", help="the model today's code runs, when it is not --checkpoint (e.g. the "
                    "teacher of a distilled ROI model); mask IoU and task mIoU are then against that model's")
    ap.add_argument("--data", default=str(Path(os.environ.get("EDGESAM_MAGNETIC_TILE",
                                                              REPO.parent / "shared" / "data" / "magnetic-tile"))))
    ap.add_argument("--val-fraction", type=float, default=0.2)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--configs", default=",".join(CONFIGS), help="this checkout's configurations")
    ap.add_argument("--baseline-configs", default="ort_fp32", help="today's configurations (ort_fp32 required)")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--threads", type=int, help="default: the runtime's choice (every usable core)")
    ap.add_argument("--work", default="/tmp/edgesam-roi-per-box")
    ap.add_argument("--name", default="roi_per_box")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "cpu_backends" / "results"))
    ap.add_argument("--lock", help="the benchmark lock (default /tmp/edgesam-bench.lock)")
    # worker mode (one configuration in a fresh process)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--bundle", help=argparse.SUPPRESS)
    ap.add_argument("--accuracy", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--masks", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        sys.path.remove(str(REPO))  # the tree under test comes from PYTHONPATH, not this checkout
        Path(args.result).write_text(json.dumps(worker(args)))
        return 0
    if not args.checkpoint or not args.baseline_src:
        ap.error("--checkpoint and --baseline-src are required")
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
