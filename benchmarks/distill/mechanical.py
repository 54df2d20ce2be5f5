"""Mechanical figure at full scale: vit_b at 1024 px (random weights, seed 0) distilled into vit_t at the same grid.

The teacher is the official vit_b architecture at 1024 px with random weights (seed 0): no pretrained
SAM weights reach this machine. The student is vit_t at 1024 px, so its embedding grid is the
teacher's 64 x 64. Teacher embeddings are computed once through the teacher's exported ONNX encoder
(ONNX Runtime is ~3x faster than eager torch here) on a subset of magnetic-tile images; the student
is evaluated against the teacher on held-out images with the reference predictor (box prompts from
the ground truth on defect images, random boxes on defect-free ones), next to its untrained start.

What a random teacher shows: that the pipeline distils at full scale (cache, 64x64 grid, 256-channel
neck, decoder hand-over, checkpoint, eval) and how closely the student reproduces the teacher's
embeddings and masks. What it does not show: segmentation quality (a random teacher has none), or
how hard a trained teacher's embeddings are to learn.

Reproduce (from the repo root; accuracy figures do not depend on load, the run takes hours on 1 thread):
  nice -n 10 python benchmarks/distill/mechanical.py --data ../shared/data/magnetic-tile
The encoder speed-up is measured separately on a quiet machine: see benchmarks/distill/latency.py.
"""
from __future__ import annotations

import argparse
import sys

from common import DEFAULT_DATA, WORK, context, machine_lines, random_teacher, write


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--image-size", type=int, default=1024)
    p.add_argument("--student", default="vit_t")
    p.add_argument("--train-images", type=int, default=48)
    p.add_argument("--views", type=int, default=2)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--loss", default="mse")
    p.add_argument("--eval-images", type=int, default=16)
    p.add_argument("--teacher-backend", default="onnx")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--name", default="mechanical")
    args = p.parse_args()
    ctx = context()
    import torch

    from edgesam.distill import DistillConfig, distill

    torch.set_num_threads(args.threads)
    work = WORK / args.name
    teacher = random_teacher("vit_b", args.image_size, work / "vit_b_random_seed0.pth")
    cfg = DistillConfig(teacher=str(teacher), student=args.student, images=args.data, out=str(work / "student.pth"),
                        run_dir=str(work / "run"), cache_dir=str(work / "teacher_cache"), loss=args.loss,
                        teacher_backend=args.teacher_backend, views_per_image=args.views, epochs=args.epochs,
                        batch_size=args.batch_size, lr=args.lr, max_images=args.train_images,
                        eval_max_images=args.eval_images, latency_runs=0, threads=args.threads)
    report = distill(cfg, progress=True, resume=(work / "run" / "last.pt").exists())
    payload = {**ctx, "args": vars(args), "teacher": str(teacher), "report": report}
    write(args.name, payload, _markdown)


def _f(v, d=4):
    return "n/a" if v is None else f"{v:.{d}f}"


def _markdown(p: dict) -> str:
    r, a = p["report"], p["args"]
    ag = r["agreement"]
    size = r["size"]
    lines = [f"# Mechanical figure: vit_b (random, seed 0) -> {a['student']} at {a['image_size']} px", ""]
    lines += machine_lines(p)
    lines += ["", f"Teacher: official vit_b architecture at {a['image_size']} px, random weights (seed 0); embeddings "
                  f"cached via its {a['teacher_backend']} encoder. Student: {a['student']} at {a['image_size']} px "
                  f"(embedding grid {a['image_size'] // 16}x{a['image_size'] // 16}, 256-channel neck), random init, "
                  f"trained {a['epochs']} epochs on {r['train_images']} magnetic-tile images x {a['views']} views "
                  f"(batch {a['batch_size']}, lr {a['lr']}, loss {a['loss']}). Held out: {r['held_out_images']} images "
                  f"({r['held_out_labelled']} with defect masks).", "",
              "| held-out figure | distilled student | untrained start |", "|---|---|---|"]
    for name in ("val_rel", "val_cos"):
        label = {"val_rel": "embedding relative error |s-t|^2/|t|^2", "val_cos": "embedding cosine"}[name]
        lines.append(f"| {label} | {_f(r['embedding']['student'][name])} | {_f(r['embedding']['untrained'][name])} |")
    for kind in ("box", "point"):
        for source, what in (("labelled", "ground-truth boxes" if kind == "box" else "points in defects"),
                             ("random", "random boxes" if kind == "box" else "random points")):
            if source not in ag["students"]["student"][kind]["by_source"]:
                continue
            s = ag["students"]["student"][kind]["by_source"][source]
            u = ag["students"]["untrained"][kind]["by_source"][source]
            lines.append(f"| mask IoU vs teacher, {what}: mean (p5) | {_f(s['iou_vs_teacher']['mean'])} "
                         f"({_f(s['iou_vs_teacher']['p5'], 3)}) | {_f(u['iou_vs_teacher']['mean'])} "
                         f"({_f(u['iou_vs_teacher']['p5'], 3)}) |")
            lines.append(f"| &nbsp;&nbsp;prompts; empty masks: teacher / student / both (left out) | "
                         f"{s['prompts']}; {s['teacher_empty']} / {s['student_empty']} / {s['both_empty']} | "
                         f"{u['teacher_empty']} / {u['student_empty']} / {u['both_empty']} |")
    lines += ["", f"Encoder FLOPs: teacher {size['teacher']['encoder_gflops']:.0f} G, student "
                  f"{size['student']['encoder_gflops']:.1f} G ({size['teacher']['encoder_gflops'] / size['student']['encoder_gflops']:.1f}x "
                  f"fewer). The latency speed-up is recorded by `latency.py` on a quiet machine, not here.", "",
              "Task mIoU is not a figure of this benchmark: a random teacher does not segment defects "
              f"(teacher {_f(ag['teacher_task_box_miou'])}, student {_f(ag['students']['student']['task_box_miou'])} "
              "on the held-out defect masks, for the record).", "",
              "What a random teacher shows: that distillation runs at full scale (1024 px, 64x64 grid, vit_b teacher "
              "cached once) and how closely the student's embeddings and, through the teacher's decoder, its masks "
              "follow the teacher's, against the untrained start's. What it does not show: accuracy on the task, or "
              "how well a trained teacher's embeddings are reproduced on the same budget."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
