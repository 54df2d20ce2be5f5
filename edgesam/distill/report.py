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


COLUMNS = {"student": "distilled student", "embed_stage": "after the embedding stage", "untrained": "untrained start"}


def format_report(r: dict) -> str:
    cfg, a = r["config"], r["agreement"]
    teacher, student = r["teacher"]["arch"], r["student_arch"]
    names = [n for n in COLUMNS if n in a["students"]]
    st = {n: a["students"][n] for n in names}
    emb = {n: r["embedding"].get(n) for n in names}
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
        lines += ["", "The teacher records `init: random`: trained from random weights, or never trained at all. An "
                      "untrained teacher only shows the student reproducing a function, not segmentation quality; "
                      "the teacher's task mIoU below (where labels exist) tells which."]

    def row(label: str, cell) -> str:
        return f"| {label} | " + " | ".join(cell(n) for n in names) + " |"

    lines += ["", "| figure (held-out) | " + " | ".join(COLUMNS[n] for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for key, label, digits in (("val_mse", "embedding MSE", 5), ("val_rel", "embedding relative error \\|s-t\\|²/\\|t\\|²", 4),
                               ("val_cos", "embedding cosine", 4)):
        lines.append(row(label, lambda n: _f(emb[n][key], digits) if emb[n] else "n/a"))
    for kind in ("box", "point"):
        if st["student"][kind] is None:
            lines.append(f"| {kind} prompts | not applicable ({r['framing'].get('mode')} framing takes boxes) |"
                         + " |" * (len(names) - 1))
            continue
        for source in ("labelled", "random"):
            if source not in st["student"][kind]["by_source"]:
                continue
            part = {n: st[n][kind]["by_source"][source] for n in names}
            what = "ground-truth" if source == "labelled" else "random"
            lines.append(row(f"mask IoU vs teacher, {what} {kind} prompts: mean (p5), n",
                             lambda n: f"{_f(part[n]['iou_vs_teacher']['mean'])} ({_f(part[n]['iou_vs_teacher']['p5'], 3)}), "
                                       f"{part[n]['iou_vs_teacher']['n']}"))
            lines.append(row(f"&nbsp;&nbsp;empty masks of {part['student']['prompts']}: teacher "
                             f"({_pct(part['student']['teacher_empty_share'])}) / student / both (left out)",
                             lambda n: f"{part[n]['teacher_empty']} / {part[n]['student_empty']} / {part[n]['both_empty']}"))
    if a["teacher_task_box_miou"] is not None:
        lines.append(row(f"task mIoU, box prompts ({a['task_objects']} objects; teacher {_f(a['teacher_task_box_miou'])})",
                         lambda n: _f(st[n]["task_box_miou"])))
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
