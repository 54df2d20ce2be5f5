"""Markdown rendering of a prune report (report.md in the run dir)."""
from __future__ import annotations


def format_report(r: dict) -> str:
    p = r["prune"]
    lines = [f"# Prune report: {r['out']}", "", f"Source: `{r['source']}`", "",
             "| figure | unpruned | pruned | ratio |", "|---|---|---|---|",
             f"| encoder parameters (M) | {p['encoder_params']['before'] / 1e6:.3f} | {p['encoder_params']['after'] / 1e6:.3f} "
             f"| {p['encoder_params']['ratio']:.3f} |",
             f"| encoder GFLOPs | {p['encoder_gflops']['before']:.3f} | {p['encoder_gflops']['after']:.3f} | "
             f"{p['encoder_gflops']['ratio']:.3f} |"]
    if "latency" in r:
        lat = r["latency"]
        lines.append(f"| ORT encoder latency, median ms | {lat['unpruned']['median_ms']:.1f} | {lat['pruned']['median_ms']:.1f} "
                     f"| {1 / lat['speedup']:.3f} ({lat['speedup']:.2f}x faster) |")
    lines += ["", f"Blocks kept: {p['kept_blocks']}; heads per block {p['block_heads']}; MLP widths {p['block_mlp_dims']}.",
              f"Config: `{p['config']}`", ""]
    if "accuracy" in r:
        lines += ["## Accuracy (box prompts from ground truth)", "",
                  "| stage | mask IoU vs unpruned (mean / p5 / min) | task mIoU pruned | task mIoU unpruned | objects |",
                  "|---|---|---|---|---|"]
        for stage, a in r["accuracy"].items():
            v = a["iou_vs_unpruned"]
            lines.append(f"| {stage.replace('_', ' ')} | {v['mean']:.4f} / {v['p5']:.4f} / {v['min']:.4f} | "
                         f"{a['task_iou']['mean']:.4f} | {a['unpruned_task_iou']['mean']:.4f} | {v['n']} |")
        lines.append("")
    if "recovery" in r:
        rec = r["recovery"]
        lines += ["## Recovery (distillation from the unpruned model)", "",
                  f"{rec['steps']} steps on {rec['images']} images in {rec['seconds']:.0f} s. Distillation loss on fixed "
                  f"images: {rec['distill_before']['loss']:.4f} -> {rec['distill_after']['loss']:.4f} (embedding MSE "
                  f"{rec['distill_before']['embed_mse']:.5f} -> {rec['distill_after']['embed_mse']:.5f}).", ""]
    return "\n".join(lines)
