"""Teacher cache speed: seconds per view of the vit_b teacher at 1024 px on every backend `distill` can
compute its cache with, side by side in one process, with the same threads, and how far each
backend's embeddings are from torch eager's.

Backends (`edgesam.distill.models`): torch (eager, fp32: what `distill` used by default before),
onnx (the exported encoder on ONNX Runtime fp32), openvino (OpenVINO fp32), openvino_bf16 (OpenVINO
bf16: runs in fp32 on a CPU without bf16 math), and what `--teacher-backend auto` picks here.

Per backend: each view's encoder call timed after a warm-up that lasts until the timings settle
(the last 3 calls within 10 % of their median), views in turn over --passes passes (the backends'
order reversed every pass), p50 seconds per view and the speed-up against torch eager. Accuracy on
the same views: relative L1 error of the embedding against torch eager, beside the error the cache's
own fp16 storage adds, and the mask IoU of the teacher's decoder on those embeddings (one box per
ground-truth defect, magnetic-tile) against its masks on torch's embeddings, where torch's are
non-empty. Weights: random init (seed 0); speed does not depend on the values.

Target: the backend `auto` picks computes the cache >= 5x faster than torch eager.

The script holds /tmp/edgesam-bench.lock for the whole run (see benchmarks/cpu_backends):
    .venv/bin/python benchmarks/distill/teacher_cache.py --views 4 --passes 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.cpu_backends.cpu_backends import LOCK, bench_lock, command_line  # noqa: E402

BACKENDS = ("torch", "onnx", "openvino", "openvino_bf16")
TARGET = 5.0


def views(data: Path, count: int, size: int):
    """`count` labelled magnetic-tile images: (encoder input, original hw, resized hw, boxes) each."""
    from edgesam_runtime import geometry
    from edgesam.eval.plan import build_plan
    from edgesam.eval.split import scoring_set

    plan = build_plan(scoring_set(str(data)), "box", seed=0, max_images=count)
    out = []
    for item, sample in plan.samples():
        x, original_hw, resized_hw = geometry.preprocess(sample.image, size)
        out.append((x, tuple(original_hw), tuple(resized_hw), item.boxes))
    return out


def masks_from(model, embedding: np.ndarray, view) -> np.ndarray:
    """The teacher's own decoder on an embedding (the reference predictor): one mask per box."""
    import torch

    from edgesam.reference import SamReferencePredictor

    _, original_hw, _, boxes = view
    predictor = SamReferencePredictor(model)
    predictor.set_embedding(torch.from_numpy(np.asarray(embedding, np.float32)), original_hw)
    return predictor.predict(boxes=boxes).masks[:, 0]


def main(argv=None) -> int:
    from edgesam_runtime.timing import ms_since, spread, warm_until_settled
    from edgesam.distill.models import load_teacher, teacher_backend
    from edgesam_runtime.envinfo import machine_state, threads_line
    from edgesam.utils.environment import toolchain_environment
    from edgesam.models import arch_for, build_sam, save_checkpoint
    from edgesam_runtime.threads import configure
    from edgesam_runtime.files import write_json_atomic, write_text_atomic

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="vit_b")
    ap.add_argument("--image-size", type=int, default=1024)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--threads", type=int, help="default: every usable core")
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "magnetic-tile"))
    ap.add_argument("--name", default="teacher_cache")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "distill"))
    args = ap.parse_args(argv)
    threads = configure(args.threads)  # torch's pool, before torch starts working
    import torch

    torch.set_num_threads(threads)
    with bench_lock(LOCK), tempfile.TemporaryDirectory(prefix="teacher-cache-") as tmp:
        start = machine_state(threads)
        torch.manual_seed(0)
        arch = arch_for(args.variant, args.image_size)
        checkpoint = Path(tmp) / "teacher.pth"
        save_checkpoint(build_sam(arch).eval(), checkpoint, arch)
        auto, auto_why = teacher_backend("auto")
        teachers = {name: load_teacher(checkpoint, backend=name) for name in BACKENDS}
        encoders = {name: t.encoder(Path(tmp) / name, threads) for name, t in teachers.items()}
        data = views(Path(args.data), args.views, args.image_size)
        warmups = {name: warm_until_settled(lambda e=enc: e(data[0][0])) for name, enc in encoders.items()}
        times = {name: [] for name in BACKENDS}
        embeddings = {name: [None] * len(data) for name in BACKENDS}
        for p in range(args.passes):
            for name in (BACKENDS if p % 2 == 0 else BACKENDS[::-1]):
                for i, view in enumerate(data):
                    began = time.perf_counter()
                    embeddings[name][i] = np.asarray(encoders[name](view[0]))
                    times[name].append(ms_since(began) / 1e3)
                print(f"pass {p + 1} {name}: {statistics.median(times[name]):.2f} s per view", flush=True)
        end = machine_state(threads)
        model = teachers["torch"].model
        reference_masks = [masks_from(model, e, v) for e, v in zip(embeddings["torch"], data)]
        rows = {}
        for name in BACKENDS:
            errors, ious, compared, empty = [], [], 0, 0
            for i, view in enumerate(data):
                ref, got = embeddings["torch"][i], embeddings[name][i]
                errors.append(float(np.abs(got - ref).sum() / np.abs(ref).sum()))
                for a, b in zip(reference_masks[i], masks_from(model, got, view)):
                    if not a.any():
                        empty += 1
                        continue
                    compared += 1
                    ious.append(float((a & b).sum() / (a | b).sum()))
            p50 = statistics.median(times[name])
            rows[name] = {"s_per_view_p50": p50, "spread": spread(times[name]), "warmup": warmups[name],
                          "speedup_vs_torch": statistics.median(times["torch"]) / p50,
                          "embedding_rel_l1_vs_torch": float(np.mean(errors)),
                          "mask_iou_vs_torch_mean": float(np.mean(ious)) if ious else None,
                          "mask_iou_vs_torch_min": float(np.min(ious)) if ious else None,
                          "masks_compared": compared, "torch_masks_empty": empty}
        fp16_error = float(np.mean([np.abs(e.astype(np.float16).astype(np.float32) - e).sum() / np.abs(e).sum()
                                    for e in embeddings["torch"]]))
    result = {"name": args.name, "command": command_line(argv), "variant": args.variant, "image_size": args.image_size,
              "weights": "random init (seed 0)", "views": len(data), "passes": args.passes, "threads": threads,
              "auto": {"backend": auto, "why": auto_why}, "fp16_storage_rel_l1": fp16_error, "rows": rows,
              "target_speedup": TARGET, "met": rows[auto]["speedup_vs_torch"] >= TARGET,
              "machine_start": start, "machine_end": end, "environment": toolchain_environment()}
    lines = [f"# Teacher cache: {args.variant} at {args.image_size} px, seconds per view", "", "Command:", "",
             f"    {result['command']}", "",
             f"CPU: {start['cpu_line']} (isa {start['cpu']['isa']}). Load average at start {start['load_average']}, "
             f"at end {end['load_average']}.", f"Threads: {threads_line(start['threads'])} (every backend, torch too).",
             f"{len(data)} views (magnetic-tile images, one box per defect for the masks), {args.passes} passes, "
             f"each backend warmed until its timings settled. `auto` picks **{auto}** here: {auto_why}.", "",
             "| backend | s per view (p50) | spread | vs torch eager | embedding rel. L1 vs torch | mask IoU vs torch "
             "(mean / min, n) | warm-up calls |", "|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        iou = "-" if row["mask_iou_vs_torch_mean"] is None else \
            f"{row['mask_iou_vs_torch_mean']:.4f} / {row['mask_iou_vs_torch_min']:.4f}, {row['masks_compared']}"
        lines.append(f"| {name}{' (auto)' if name == auto else ''} | {row['s_per_view_p50']:.2f} | {row['spread']:.0%} | "
                     f"{row['speedup_vs_torch']:.2f}x | {row['embedding_rel_l1_vs_torch']:.2e} | {iou} | "
                     f"{row['warmup']['calls']}{'' if row['warmup']['settled'] else ' (unsettled)'} |")
    lines += ["", f"The cache stores fp16: that rounding alone is a relative L1 error of {fp16_error:.2e}. Mask IoU "
              "counts only boxes whose mask on torch's embedding is non-empty "
              f"({rows['torch']['torch_masks_empty']} empty left out).", "",
              f"Target: `auto` ({auto}) >= {TARGET}x torch eager: **{'met' if result['met'] else 'not met'}** "
              f"({rows[auto]['speedup_vs_torch']:.2f}x)."]
    write_json_atomic(Path(args.out) / f"{args.name}.json", result)
    write_text_atomic(Path(args.out) / f"{args.name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
