"""Which embedding loss distils best: MSE vs MSE + cosine, same teacher, images, views, seed and schedule.

Teacher: the official architecture with random weights (seed 0; no pretrained weights reach this
machine), at a reduced input size so that the comparison fits a shared CPU. The figure that decides
is mask IoU against the teacher on held-out magnetic-tile images (box prompts), next to the
untrained student's, since a random decoder can agree with little help from the image.

Reproduce (from the repo root):
  nice -n 10 python benchmarks/distill/loss_choice.py --data ../shared/data/magnetic-tile
"""
from __future__ import annotations

import argparse
import sys

from common import DEFAULT_DATA, WORK, context, machine_lines, random_teacher, write


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--teacher-variant", default="vit_b")
    p.add_argument("--student", default="vit_t")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--losses", default="mse,mse+cos")
    p.add_argument("--train-images", type=int, default=96)
    p.add_argument("--views", type=int, default=2)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-images", type=int, default=32)
    p.add_argument("--box-side", default="0.05,0.6", help="random prompt boxes' side range (the recorded run's)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--name", default="loss_choice")
    args = p.parse_args()
    ctx = context()
    import torch

    from edgesam.distill import DistillConfig, distill

    torch.set_num_threads(args.threads)
    work = WORK / args.name
    teacher = random_teacher(args.teacher_variant, args.image_size, work / f"{args.teacher_variant}_random_seed0.pth")
    rows = {}
    for loss in args.losses.split(","):
        tag = loss.replace("+", "_")
        cfg = DistillConfig(teacher=str(teacher), student=args.student, images=args.data, out=str(work / tag / "student.pth"),
                            run_dir=str(work / tag), cache_dir=str(work / "teacher_cache"), loss=loss,
                            views_per_image=args.views, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            max_images=args.train_images, eval_max_images=args.eval_images, latency_runs=0,
                            threads=args.threads, box_side=tuple(float(v) for v in args.box_side.split(",")))
        resume = (work / tag / "last.pt").exists()
        rows[loss] = distill(cfg, progress=True, resume=resume)
    payload = {**ctx, "args": vars(args), "teacher": str(teacher), "results": {k: _row(r) for k, r in rows.items()}}
    write(args.name, payload, _markdown)


def _row(r: dict) -> dict:
    out = {}
    for name in ("student", "untrained"):
        s, e = r["agreement"]["students"][name], r["embedding"][name]
        out[name] = {"embedding_rel_error": e["val_rel"], "embedding_cos": e["val_cos"],
                     "box_iou_labelled": s["box"]["by_source"].get("labelled", {}).get("iou_vs_teacher", {}).get("mean"),
                     "box_iou_random": s["box"]["by_source"].get("random", {}).get("iou_vs_teacher", {}).get("mean"),
                     "point_iou": s["point"]["iou_vs_teacher"]["mean"],
                     "box_teacher_empty_share": s["box"]["teacher_empty_share"], "box_prompts": s["box"]["prompts"]}
    out["train_images"], out["held_out_images"], out["wall_s"] = r["train_images"], r["held_out_images"], r["wall_s"]
    return out


def _markdown(p: dict) -> str:
    a = p["args"]
    lines = [f"# Embedding loss: {a['teacher_variant']} (random, seed 0) -> {a['student']} at {a['image_size']} px", ""]
    lines += machine_lines(p)
    lines += ["", f"{a['train_images']} training images x {a['views']} views, {a['epochs']} epochs, batch {a['batch_size']}, "
                  f"lr {a['lr']}; held-out: {a['eval_images']} images (ground-truth boxes on labelled ones, random boxes "
                  f"on defect-free ones).", "",
              "| loss | embedding rel. error | cosine | box IoU vs teacher (GT boxes) | box IoU (random boxes) | point IoU | "
              "teacher empty (box) |", "|---|---|---|---|---|---|---|"]
    for loss, r in p["results"].items():
        for name in ("student", "untrained"):
            x = r[name]
            label = loss if name == "student" else f"{loss}: untrained start"
            lines.append(f"| {label} | {x['embedding_rel_error']:.4f} | {x['embedding_cos']:.4f} | "
                         f"{_f(x['box_iou_labelled'])} | {_f(x['box_iou_random'])} | {_f(x['point_iou'])} | "
                         f"{_f(x['box_teacher_empty_share'], 3)} of {x['box_prompts']} |")
    return "\n".join(lines) + "\n"


def _f(v, d=4):
    return "n/a" if v is None else f"{v:.{d}f}"


if __name__ == "__main__":
    sys.exit(main())
