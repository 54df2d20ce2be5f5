"""report.md of a distillation run: what the student learned, how closely it answers like the teacher.

Every agreement figure is shown for the distilled student and for its untrained start (the same
student encoder at random init with the teacher's decoder): the gap between the two is what the
distillation bought. With a random teacher, or a decoder that leans on the prompt more than on the
image, the untrained start can already agree a lot, and the report makes that visible.
"""
from __future__ import annotations

import math


def _f(v, digits: int = 4) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def format_report(r: dict) -> str:
    cfg, a = r["config"], r["agreement"]
    teacher, student = r["teacher"]["arch"], r["student_arch"]
    s, u = a["students"]["student"], a["students"]["untrained"]
    es, eu = r["embedding"]["student"], r["embedding"]["untrained"]
    mask_stage = f", then {cfg['mask_epochs']} on the teacher's masks" if cfg["mask_epochs"] else ""
    lines = [
        f"# Distillation: {teacher['variant']} -> {student['variant']} at {student['image_size']} px",
        "",
        f"Teacher `{r['teacher']['checkpoint']}` (embeddings cached via its {r['teacher']['backend']} encoder), "
        f"input framing `{r['framing'].get('mode')}`{' (dense box prompt)' if r['framing'].get('dense_box') else ''}; "
        f"student written to `{r['out']}`.",
        f"Trained on {r['train_images']} images x {cfg['views_per_image']} views (loss `{cfg['loss']}`, "
        f"{cfg['epochs']} epoch(s){mask_stage}); evaluated on {r['held_out_images']} held-out images "
        f"({r['held_out_labelled']} labelled).",
    ]
    if teacher.get("extra", {}).get("init") == "random":
        lines += ["", "**The teacher has random weights**: these figures show the student reproducing a function, "
                      "not segmentation quality."]
    lines += ["", "| figure (held-out) | distilled student | untrained start |", "|---|---|---|",
              f"| embedding MSE | {_f(es['val_mse'], 5)} | {_f(eu['val_mse'], 5)} |",
              f"| embedding relative error \\|s-t\\|²/\\|t\\|² | {_f(es['val_rel'])} | {_f(eu['val_rel'])} |",
              f"| embedding cosine | {_f(es['val_cos'])} | {_f(eu['val_cos'])} |"]
    for kind in ("box", "point"):
        if s[kind] is None:
            lines.append(f"| {kind} prompts | not applicable ({r['framing'].get('mode')} framing takes boxes) | |")
            continue
        for source in ("labelled", "random"):
            if source not in s[kind]["by_source"]:
                continue
            ks, ku = s[kind]["by_source"][source], u[kind]["by_source"][source]
            what = "ground-truth" if source == "labelled" else "random"
            lines.append(f"| mask IoU vs teacher, {what} {kind} prompts: mean (p5), n | "
                         f"{_f(ks['iou_vs_teacher']['mean'])} ({_f(ks['iou_vs_teacher']['p5'], 3)}), {ks['iou_vs_teacher']['n']} | "
                         f"{_f(ku['iou_vs_teacher']['mean'])} ({_f(ku['iou_vs_teacher']['p5'], 3)}) |")
            lines.append(f"| &nbsp;&nbsp;empty masks of {ks['prompts']}: teacher ({_pct(ks['teacher_empty_share'])}) / "
                         f"student / both (left out) | {ks['teacher_empty']} / {ks['student_empty']} / {ks['both_empty']} | "
                         f"{ku['teacher_empty']} / {ku['student_empty']} / {ku['both_empty']} |")
    if a["teacher_task_box_miou"] is not None:
        lines.append(f"| task mIoU, box prompts ({a['task_objects']} objects; teacher {_f(a['teacher_task_box_miou'])}) | "
                     f"{_f(s['task_box_miou'])} | {_f(u['task_box_miou'])} |")
    size = r["size"]
    lines += ["", "| encoder | params (M) | GFLOPs |" + (" ONNX Runtime median ms |" if "latency" in r else ""),
              "|---|---|---|" + ("---|" if "latency" in r else "")]
    for name in ("teacher", "student"):
        row = f"| {name} | {size[name]['encoder_params_m']:.2f} | {size[name]['encoder_gflops']:.2f} |"
        if "latency" in r:
            row += f" {r['latency'][name]['median_ms']:.1f} |"
        lines.append(row)
    ratio = size["teacher"]["encoder_gflops"] / size["student"]["encoder_gflops"]
    lines.append("")
    per = " per crop (ROI framing: one encoder call per box)" if r["framing"].get("mode") == "roi" else ""
    lines.append(f"The student's encoder needs {ratio:.1f}x fewer FLOPs{per}"
                 + (f"; measured {r['latency']['speedup']:.2f}x faster ({r['latency']['backend']}), on this machine at "
                    f"the time of the run (noisy on a busy machine)." if "latency" in r else "."))
    lines.append("Mask IoU against the teacher leaves out the prompts where both masks are empty (counted above); task "
                 "mIoU is `edgesam eval`'s (box prompts drawn from the ground truth) on the held-out labelled images.")
    return "\n".join(lines) + "\n"
