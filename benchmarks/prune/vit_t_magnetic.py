"""Small variant trained on magnetic-tile: prune 25 % / 50 %, recover by distillation, measure.

For each config: encoder params and FLOPs, ONNX Runtime encoder latency (all models side by side,
round-robin, in one final measurement), and mask IoU against the unpruned model plus task mIoU on
the magnetic-tile validation split (split_by_stem(load_dataset(mt), 0.2, seed=0), tight GT boxes),
before and after recovery. Target (issue 6): after recovery, mask IoU vs unpruned >= 0.95.

Reproduce (from the repo root; the checkpoint comes from the finetune benchmark):
  flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/prune/vit_t_magnetic.py \
      --checkpoint runs/bench/vit_t_magnetic.pth --epochs 2
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from common import context, write
from edgesam.compress import PruneConfig, RecoveryConfig
from edgesam.compress.latency import encoder_latency
from edgesam.compress.pipeline import PruneJob, run_prune
from edgesam.models import create_model

REPO = Path(__file__).resolve().parents[2]
CONFIGS = {
    "p25": dict(ratio=0.25),
    "heads25_mlp50": dict(head_ratio=0.25, mlp_ratio=0.5),
    "p50": dict(ratio=0.5),
}
TARGET_IOU = 0.95


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=REPO / "runs/bench/vit_t_magnetic.pth")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("EDGESAM_MAGNETIC_TILE", REPO.parent / "shared/data/magnetic-tile")))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--importance", default="taylor")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--out-dir", type=Path, default=REPO / "runs/bench/prune")
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        raise SystemExit(f"{args.checkpoint}: trained vit_t checkpoint not found (the finetune benchmark writes it)")
    ctx = context()
    rows, models = {}, {"unpruned": create_model(checkpoint=args.checkpoint)}
    for name in args.configs.split(","):
        job = PruneJob(out=args.out_dir / f"vit_t_magnetic_{name}.pth", checkpoint=args.checkpoint,
                       prune=PruneConfig(importance=args.importance, **CONFIGS[name]),
                       recovery=RecoveryConfig(epochs=args.epochs, max_steps=args.max_steps, lr=args.lr),
                       recover_data=args.data, calib_data=args.data / "free" / "images", latency_runs=0)
        print(f"== {name}", flush=True)
        report = run_prune(job)
        rows[name] = _row(report)
        models[name] = create_model(checkpoint=job.out)
    latency = encoder_latency(models, runs=args.latency_runs, warmup=2)
    base = latency["unpruned"]["median_ms"]
    for name, row in rows.items():
        row["ort_median_ms"] = latency[name]["median_ms"]
        row["ort_speedup"] = base / latency[name]["median_ms"]
    payload = {**ctx, "checkpoint": str(args.checkpoint), "epochs": args.epochs, "max_steps": args.max_steps,
               "lr": args.lr, "importance": args.importance, "image_size": models["unpruned"].image_encoder.img_size,
               "latency": latency, "results": rows,
               "target": {"min_iou_vs_unpruned_after_recovery": TARGET_IOU,
                          "met": {n: r["after_recovery"]["iou_vs_unpruned"]["mean"] >= TARGET_IOU for n, r in rows.items()}}}
    write("vit_t_magnetic", payload, _markdown)


def _row(report: dict) -> dict:
    p = report["prune"]
    return {"encoder_params_m": p["encoder_params"]["after"] / 1e6, "encoder_params_ratio": p["encoder_params"]["ratio"],
            "encoder_gflops": p["encoder_gflops"]["after"], "gflops_ratio": p["encoder_gflops"]["ratio"],
            "block_heads": p["block_heads"], "block_mlp_dims": p["block_mlp_dims"],
            "before_recovery": report["accuracy"]["before_recovery"], "after_recovery": report["accuracy"]["after_recovery"],
            "recovery": {k: report["recovery"][k] for k in ("steps", "images", "distill_before", "distill_after", "seconds")}}


def _markdown(p: dict) -> str:
    lat = p["latency"]["unpruned"]["median_ms"]
    lines = [f"# vit_t on magnetic-tile: pruning + recovery ({p['image_size']} px)", "",
             f"Command: `{p['command']}`  ", f"Checkpoint `{p['checkpoint']}`; importance {p['importance']}; recovery "
             f"{p['epochs']} epoch(s), lr {p['lr']}. Started {p['started']}; load average start {p['loadavg_start']}, "
             f"end {p['loadavg_end']}. {p['note']}", "",
             f"Unpruned: ORT encoder median {lat:.1f} ms.", "",
             "| config | heads | MLP widths | enc params (M) | GFLOPs ratio | ORT ms | speedup | IoU vs unpruned before | after | task mIoU after (unpruned) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in p["results"].items():
        b, a = r["before_recovery"], r["after_recovery"]
        lines.append(f"| {name} | {r['block_heads']} | {r['block_mlp_dims'][0]} | {r['encoder_params_m']:.2f} | {r['gflops_ratio']:.2f} | "
                     f"{r['ort_median_ms']:.1f} | {r['ort_speedup']:.2f}x | {b['iou_vs_unpruned']['mean']:.4f} | "
                     f"{a['iou_vs_unpruned']['mean']:.4f} (p5 {a['iou_vs_unpruned']['p5']:.3f}) | {a['task_iou']['mean']:.4f} "
                     f"({a['unpruned_task_iou']['mean']:.4f}) |")
    lines += ["", f"Target: mask IoU vs unpruned >= {TARGET_IOU} after recovery: "
              + ", ".join(f"{n} {'met' if m else 'NOT met'}" for n, m in p["target"]["met"].items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
