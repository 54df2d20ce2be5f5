"""report.md of a distillation run: what the student learned, how closely it answers like the teacher."""
from __future__ import annotations

import math


def _f(v, digits: int = 4) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def format_report(r: dict) -> str:
    cfg, a, e = r["config"], r["agreement"], r["embedding"]
    teacher, student = r["teacher"]["arch"], r["student_arch"]
    lines = [
        f"# Distillation: {teacher['variant']} -> {student['variant']} at {student['image_size']} px",
        "",
        f"Teacher `{r['teacher']['checkpoint']}` ({r['teacher']['backend']} backend for its cached embeddings), "
        f"input framing `{r['framing'].get('mode')}`; student written to `{r['out']}`.",
        f"Trained on {r['train_images']} images x {cfg['views_per_image']} views (loss `{cfg['loss']}`, "
        f"{cfg['epochs']} epoch(s){', then ' + str(cfg['mask_epochs']) + ' on the teacher masks' if cfg['mask_epochs'] else ''}); "
        f"evaluated on {r['held_out_images']} held-out images ({r['held_out_labelled']} labelled).",
    ]
    if teacher.get("extra", {}).get("init") == "random":
        lines.append("**The teacher has random weights**: these figures show the student reproducing a function, "
                     "not segmentation quality.")
    lines += ["", "| figure | value |", "|---|---|",
              f"| embedding MSE (held-out) | {_f(e['val_mse'], 5)} |",
              f"| embedding relative error \\|s-t\\|²/\\|t\\|² | {_f(e['val_rel'])} |",
              f"| embedding cosine | {_f(e['val_cos'])} |"]
    for kind in ("box", "point"):
        k = a[kind]
        lines.append(f"| mask IoU vs teacher, {kind} prompts (mean / p5, n) | {_f(k['iou_vs_teacher']['mean'])} / "
                     f"{_f(k['iou_vs_teacher']['p5'], 3)}, {k['iou_vs_teacher']['n']} |")
        lines.append(f"| teacher empty masks, {kind} prompts (excluded) | {k['teacher_empty']} of {k['prompts']} "
                     f"({_f(k['teacher_empty_share'] * 100 if k['prompts'] else None, 1)} %) |")
        lines.append(f"| student empty where the teacher is not, {kind} | {k['student_empty_where_teacher_not']} |")
    if a.get("task_box"):
        t = a["task_box"]
        lines.append(f"| task mIoU, box prompts: teacher / student ({t['objects']} objects) | "
                     f"{_f(t['teacher_miou'])} / {_f(t['student_miou'])} ({_f(t['student_miou'] - t['teacher_miou'], 4)}) |")
    size = r["size"]
    lines.append(f"| encoder params (M): teacher / student | {size['teacher']['encoder_params_m']:.2f} / "
                 f"{size['student']['encoder_params_m']:.2f} |")
    lines.append(f"| encoder GFLOPs: teacher / student | {size['teacher']['encoder_gflops']:.2f} / "
                 f"{size['student']['encoder_gflops']:.2f} ({size['teacher']['encoder_gflops'] / size['student']['encoder_gflops']:.1f}x) |")
    if "latency" in r:
        lat = r["latency"]
        lines.append(f"| encoder latency ms (ONNX Runtime, median): teacher / student | {lat['teacher']['median_ms']:.1f} / "
                     f"{lat['student']['median_ms']:.1f} ({lat['speedup']:.2f}x) |")
    lines += ["", "Mask IoU against the teacher counts only prompts whose teacher mask is non-empty. Latency is "
                  "measured on this machine at the time of the run: on a busy machine it is noisy."]
    return "\n".join(lines) + "\n"
