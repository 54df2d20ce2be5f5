"""Markdown rendering of a prune report (report.md in the run dir)."""
from __future__ import annotations

from edgesam.compress.accuracy import accuracy_warnings


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


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
                  "Mask IoU vs unpruned leaves out prompts where both models output an empty mask; the empty columns "
                  "count the prompts whose unpruned / pruned mask is empty.", "",
                  "| stage | mask IoU vs unpruned (mean / p5 / min) | empty unpruned | empty pruned | task mIoU pruned "
                  "| task mIoU unpruned | prompts |",
                  "|---|---|---|---|---|---|---|"]
        for stage, a in r["accuracy"].items():
            v, e = a["iou_vs_unpruned"], a["empty"]
            lines.append(f"| {stage.replace('_', ' ')} | {_f(v['mean'])} / {_f(v['p5'])} / {_f(v['min'])} | "
                         f"{e['reference_empty']}/{e['prompts']} | {e['prediction_empty']}/{e['prompts']} | "
                         f"{_f(a['task_iou']['mean'])} | {_f(a['unpruned_task_iou']['mean'])} | {e['prompts']} |")
        lines.append("")
        for stage, a in r["accuracy"].items():
            lines += [f"- warning: {w}" for w in accuracy_warnings(a, stage.replace("_", " "))]
        lines.append("")
    if "recovery" in r:
        rec = r["recovery"]
        lines += ["## Recovery (distillation from the unpruned model)", "",
                  f"{rec['steps']} steps on {rec['images']} images in {rec['seconds']:.0f} s. Distillation loss on fixed "
                  f"images: {rec['distill_before']['loss']:.4f} -> {rec['distill_after']['loss']:.4f} (embedding MSE "
                  f"{rec['distill_before']['embed_mse']:.5f} -> {rec['distill_after']['embed_mse']:.5f}).", ""]
    return "\n".join(lines)
