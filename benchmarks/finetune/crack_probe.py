"""Probe (CPU): what holds magnetic-tile `crack` at ~0.66 val mIoU when its mask grid allows 0.99?

Two measurements, written to crack_probe.json / crack_probe.md beside this script:

1. The labels. Per class, how soft the ground truth's edges are: the share of mask pixels with an
   intermediate value (neither 0 nor 255) and the IoU between the mask cut at 64 and at 192. Beside
   it, for each crack, the width of the annotation (area / skeleton length) against the width of the
   visible line (annotated pixels darker than the surface beside the annotation by two robust sigmas,
   over the same length), in pixels.
2. The refiner. On the frozen scratch model (`--checkpoint`, the benchmark's seed 0 by default), a
   fresh refiner is trained alone (encoder and decoder fixed, the recipe's augmentation, targets and
   loss) for each variant: the recipe's size, wider and deeper, without the affine augmentation (its
   nearest-neighbour mask warp), and four times longer. Each is scored on the validation split (all
   classes) and on the training split's cracks: if a variant lifts the training cracks, capacity or
   schedule is short; if none does, the labels are. One more variant trains the refiner on the
   Lovasz hinge (an IoU-direct loss) instead of the recipe's BCE + Dice.
3. What the labels allow a perfect line finder. Each crack mask's own centreline (its skeleton, OpenCV's
   thinning as the runtime measures) drawn back as a band of a given half-width: one constant width for
   every crack (the best one), the crack's visible dark line plus the median annotation margin, and the
   crack's own mean annotated width. The model is not involved: this is the IoU a model would reach that
   found every crack's centreline exactly and only had to guess how wide the annotator drew it.
4. The mask threshold. The model's masks cut at another logit than 0 (-1 to +1): if the model drew cracks
   systematically too wide or too narrow, a shifted cut would lift the training split's cracks.
5. The crop's scale. The model's crack IoU per object against how much the ROI crop (1.5x the box,
   resized to the model's input) shrinks or enlarges the crack, on the validation and training splits:
   an enlarged crack has all its pixels in the crop, so what it loses there is not resolution.

Reproduce (repo root, quiet machine; about 10 minutes on 2 cores):
  flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/finetune/crack_probe.py
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
from benchmarks.finetune.common import MAGNETIC_TILE, REPO  # noqa: E402
from benchmarks.records import flock_command, save  # noqa: E402

CLASSES = ("blowhole", "break", "crack", "fray", "uneven")
VARIANTS = {  # name: (width, depth, steps, affine augmentation, loss)
    "recipe size": (48, 3, 600, True, "recipe"),
    "wider and deeper": (96, 5, 600, True, "recipe"),
    "no affine augmentation": (48, 3, 600, False, "recipe"),
    "4x longer": (48, 3, 2400, True, "recipe"),
    "Lovasz hinge loss": (48, 3, 600, True, "lovasz"),
}
SCALE_BUCKETS = ((0.0, 0.5), (0.5, 0.8), (0.8, 1.2), (1.2, float("inf")))  # crop pixels per image pixel
THRESHOLDS = (-1.0, -0.5, 0.0, 0.5, 1.0)  # logits at which the masks are cut


def label_softness(data: Path) -> dict:
    from PIL import Image

    out = {}
    for name in CLASSES:
        soft, iou = [], []
        for path in sorted((data / name / "masks").glob("*.png")):
            mask = np.asarray(Image.open(path).convert("L"))
            if (mask > 127).sum() < 16:
                continue
            low, high = mask > 64, mask > 192
            soft.append(((mask > 0) & (mask < 255)).sum() / (mask > 127).sum())
            iou.append((low & high).sum() / (low | high).sum())
        out[name] = {"masks": len(soft), "intermediate_share": float(np.mean(soft)), "iou_64_192": float(np.mean(iou))}
    return out


def crack_widths(data: Path) -> list[dict]:
    """Annotated width (area / skeleton length, the runtime's own measurement) and visible width (dark
    pixels / the same length) per crack."""
    import cv2
    from PIL import Image

    from edgesam_runtime.measure import measure_mask

    rows = []
    for path in sorted((data / "crack" / "masks").glob("*.png")):
        mask = np.asarray(Image.open(path).convert("L")) > 127
        image = np.asarray(Image.open(data / "crack" / "images" / (path.stem + ".jpg")).convert("L")).astype(float)
        length = measure_mask(mask).length_px
        if mask.sum() < 16 or length < 8:
            continue
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((9, 9), np.uint8)) > cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
        background = image[ring]  # the surface 2-4 px beside the annotation
        centre = np.median(background)
        dark = image[mask] < centre - 2.0 * 1.4826 * np.median(np.abs(background - centre))  # below 2 robust sigmas
        rows.append({"stem": path.stem, "annotated_px": float(mask.sum() / length), "visible_px": float(dark.sum() / length)})
    return rows


def centreline_ceiling(data: Path, widths: list[dict]) -> dict:
    """Mean IoU over the cracks in `widths` of bands drawn around each mask's own skeleton: the best
    constant half-width, visible width plus the median margin (annotated minus visible), and the mask's
    own mean annotated width."""
    import cv2
    from PIL import Image

    margin = float(np.median([w["annotated_px"] - w["visible_px"] for w in widths]))
    radii = np.arange(0.5, 5.01, 0.25)
    constant, visible, own = np.zeros((len(widths), len(radii))), [], []
    for row_index, w in enumerate(widths):
        mask = np.asarray(Image.open(data / "crack" / "masks" / f"{w['stem']}.png").convert("L")) > 127
        skeleton = cv2.ximgproc.thinning(mask.astype(np.uint8) * 255, thinningType=cv2.ximgproc.THINNING_GUOHALL)
        to_centre = cv2.distanceTransform((skeleton == 0).astype(np.uint8), cv2.DIST_L2, 5)

        def iou(band):
            return float((band & mask).sum() / (band | mask).sum())

        constant[row_index] = [iou(to_centre <= r) for r in radii]
        visible.append(iou(to_centre <= (w["visible_px"] + margin) / 2))
        own.append(iou(to_centre <= w["annotated_px"] / 2))
    best = int(constant.mean(0).argmax())
    return {"cracks": len(widths), "margin_px": margin, "best_constant_half_width_px": float(radii[best]),
            "best_constant": float(constant.mean(0)[best]), "visible_plus_margin": float(np.mean(visible)),
            "own_mean_width": float(np.mean(own))}


def lovasz_hinge(logits, target):
    """Lovasz hinge (Berman et al., 2018) per mask, averaged: a convex surrogate of 1 - IoU. Written here
    because no installed library has it; only this probe uses it."""
    import torch
    import torch.nn.functional as F

    losses = []
    for x, y in zip(logits.float().flatten(1), (target.flatten(1) > 0.5).float()):
        errors, order = torch.sort(1 - x * (2 * y - 1), descending=True)
        y = y[order]
        jaccard = 1 - (y.sum() - y.cumsum(0)) / (y.sum() + (1 - y).cumsum(0))
        jaccard = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
        losses.append(torch.dot(F.relu(errors), jaccard))
    return torch.stack(losses).mean()


def train_refiner(model, train_ds, cfg, width: int, depth: int, steps: int, affine: bool, loss_kind: str = "recipe",
                  seed: int = 0):
    """A fresh refiner on the frozen `model`, trained alone as the recipe trains it (bf16 where it helps)."""
    import torch

    from edgesam.data.augment import Augmenter
    from edgesam.models import refiner as refiner_module
    from edgesam.models.decode import decode_all
    from edgesam.train.loop import TrainSet, autocast_context
    from edgesam.train.optim import warmup_cosine
    from edgesam.train.losses import mask_loss
    from edgesam_runtime.roi import RefineSpec

    torch.manual_seed(seed)
    refiner_module.MaskRefiner.DEPTH = depth
    try:
        model.mask_refiner = refiner_module.MaskRefiner(RefineSpec(1, width))
    finally:
        refiner_module.MaskRefiner.DEPTH = 3
    for p in model.parameters():
        p.requires_grad_(False)
    params = list(model.mask_refiner.parameters())
    for p in params:
        p.requires_grad_(True)
    augment = cfg.augment.to_dict()
    augment["affine_p"] = augment["affine_p"] if affine else 0.0
    train_set = TrainSet(train_ds, cfg, cfg.image_size, Augmenter(type(cfg.augment).from_dict(augment), seed), cfg.image_size)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr_refiner, weight_decay=cfg.weight_decay)
    schedule = warmup_cosine(optimizer, cfg.warmup_steps, steps)
    autocast, _ = autocast_context(cfg, torch.device("cpu"))
    model.train()
    step, epoch = 0, 0
    while step < steps:
        train_set.epoch = epoch
        order = np.random.default_rng([seed, epoch]).permutation(len(train_set))
        epoch += 1
        for start in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
            items = [x for x in (train_set[i] for i in order[start:start + cfg.batch_size]) if x is not None]
            cat = lambda name: torch.cat([getattr(i, name) for i in items])  # noqa: E731
            images = cat("image")
            with torch.no_grad(), autocast:
                low, _ = decode_all(model, model.image_encoder(images), cat("coords"), cat("labels"), cat("mask_input"))
            with autocast:
                fine = model.mask_refiner(images, low[:, :1].float())
                if loss_kind == "lovasz":
                    loss = lovasz_hinge(fine, cat("fine_targets"))
                else:
                    loss, _ = mask_loss(fine, cat("fine_targets"), cfg.loss)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step >= steps:
                break
    return model.eval()


def class_scores(model, dataset, label: str) -> dict:
    from edgesam.eval import evaluate_model

    report = evaluate_model(model, dataset, "box", seed=0, label=label).to_dict(with_records=False)
    return {"overall": report["overall"]["miou"], "empty": report["overall"]["empty_predictions"],
            **{k: v["miou"] for k, v in report["per_class"].items()}}


def scores_by_threshold(checkpoint: Path, val_ds, train_cracks) -> dict:
    """Val (all classes) and training-split crack scores with the masks cut at each of THRESHOLDS: the refiner
    head's bias lowered by t moves every output logit by -t (its output is upsampled logits + the head's
    residuals), so a mask > 0 there is the model's mask > t."""
    import torch

    from edgesam.models import create_model

    rows = {}
    for t in THRESHOLDS:
        model = create_model(checkpoint=checkpoint)
        with torch.no_grad():
            model.mask_refiner.head.bias -= t
        rows[str(t)] = {"val": class_scores(model, val_ds, f"cut at {t}"),
                        "train_crack": class_scores(model, train_cracks, f"cut at {t}, train cracks")["crack"]}
    return rows


def crack_iou_by_crop_scale(model, dataset, image_size: int) -> dict:
    """Per SCALE_BUCKETS range of crop pixels per image pixel (the model's input size over its ROI crop's
    side, `model.framing`): the crack objects' count and mean box IoU."""
    from edgesam.eval.plan import build_plan
    from edgesam.eval.run import model_adapter
    from edgesam.eval.scoring import score
    from edgesam_runtime.roi import crop_windows

    cracks = dataset.subset([i for i, r in enumerate(dataset.records) if r.class_name == "crack"])
    plan = build_plan(cracks, "box", seed=0)
    boxes = [box for item, _ in plan.samples() for box in item.boxes]
    records = score(model_adapter(model), plan)
    if len(records) != len(boxes):
        raise RuntimeError(f"{len(records)} scored prompts for {len(boxes)} boxes")
    scale = image_size / crop_windows(np.array(boxes), model.framing.roi_margin, model.framing.roi_min_side)[:, 2]
    iou = np.array([r.iou for r in records])
    rows = {}
    for lo, hi in SCALE_BUCKETS:
        inside = (scale >= lo) & (scale < hi)
        rows[f"{lo}-{hi}"] = {"objects": int(inside.sum()), "miou": float(iou[inside].mean()) if inside.any() else None}
    return {"objects": len(iou), "miou": float(iou.mean()), "buckets": rows,
            "correlation": float(np.corrcoef(scale, iou)[0, 1])}


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = ["# Why crack stays near 0.66: the labels and the refiner, probed", "",
             f"Command: `{result['command']}`", "",
             f"Machine: {m['cpu_line']} ({m['cpu_count']} cores); load average before {m['load_average'][0]:.2f}, "
             f"after {result['load_after'][0]:.2f}. Model: `{result['checkpoint']}`.", "",
             "## The labels", "",
             "| class | masks | pixels of intermediate value per foreground pixel | IoU(mask > 64, mask > 192) |",
             "|---|---|---|---|"]
    for name, row in result["labels"].items():
        lines.append(f"| {name} | {row['masks']} | {row['intermediate_share']:.2f} | {row['iou_64_192']:.3f} |")
    widths = result["crack_widths"]
    ann = np.array([w["annotated_px"] for w in widths])
    vis = np.array([w["visible_px"] for w in widths])
    lines += ["", f"Cracks ({len(widths)}): annotated width median {np.median(ann):.1f} px (5-95 % "
              f"{np.percentile(ann, 5):.1f}-{np.percentile(ann, 95):.1f}), visible dark line median {np.median(vis):.1f} px; "
              f"annotated minus visible: median {np.median(ann - vis):.1f} px, spread (5-95 %) "
              f"{np.percentile(ann - vis, 5):.1f}-{np.percentile(ann - vis, 95):.1f} px.", "",
              "## What the labels allow a perfect line finder", "",
              "Each crack drawn back as a band around its own mask's centreline (no model involved): the IoU of a model "
              "that finds every centreline exactly and only has to guess the annotator's width.", "",
              "| band half-width | cracks | mean IoU |", "|---|---|---|"]
    ceiling = result["centreline_ceiling"]
    lines += [f"| one constant for all cracks (best: {ceiling['best_constant_half_width_px']:.2f} px) | {ceiling['cracks']} | "
              f"{ceiling['best_constant']:.3f} |",
              f"| (visible line + median margin {ceiling['margin_px']:.1f} px) / 2, per crack | {ceiling['cracks']} | "
              f"{ceiling['visible_plus_margin']:.3f} |",
              f"| the mask's own mean annotated width / 2, per crack | {ceiling['cracks']} | {ceiling['own_mean_width']:.3f} |",
              "", "## A fresh refiner trained alone on the frozen model", "",
              "| variant | width | depth | steps | train s | val overall | " + " | ".join(CLASSES) + " | train-split crack |",
              "|---|---|---|---|---|---|" + "---|" * len(CLASSES) + "---|"]
    base = result["model"]
    lines.append(f"| the model as trained | 48 | 3 | recipe | - | {base['val']['overall']:.4f} | "
                 + " | ".join(f"{base['val'][c]:.3f}" for c in CLASSES) + f" | {base['train_crack']:.3f} |")
    for name, row in result["variants"].items():
        lines.append(f"| {name} | {row['width']} | {row['depth']} | {row['steps']} | {row['train_s']:.0f} | "
                     f"{row['val']['overall']:.4f} | " + " | ".join(f"{row['val'][c]:.3f}" for c in CLASSES)
                     + f" | {row['train_crack']:.3f} |")
    lines += ["", "## The mask threshold (the model as trained)", "",
              "| masks cut at logit | val overall | " + " | ".join(CLASSES) + " | train-split crack |",
              "|---|---|" + "---|" * len(CLASSES) + "---|"]
    for t, row in result["thresholds"].items():
        lines.append(f"| {t} | {row['val']['overall']:.4f} | " + " | ".join(f"{row['val'][c]:.3f}" for c in CLASSES)
                     + f" | {row['train_crack']:.3f} |")
    lines += ["", "## Crack IoU by the crop's scale (the model as trained)", "",
              "Crop pixels per image pixel: the model's input size over 1.5x the box's longer side (below 1 the crop "
              "shrinks the crack, above 1 it enlarges it).", "",
              "| split | cracks | mIoU | " + " | ".join(f"scale {k}" for k in result["by_scale"]["val"]["buckets"])
              + " | correlation of scale and IoU |", "|---|---|---|" + "---|" * len(SCALE_BUCKETS) + "---|"]
    for split, row in result["by_scale"].items():
        cells = [f"{b['miou']:.3f} (n={b['objects']})" if b["objects"] else "-" for b in row["buckets"].values()]
        lines.append(f"| {split} | {row['objects']} | {row['miou']:.3f} | " + " | ".join(cells) + f" | {row['correlation']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    from edgesam.data import load_dataset
    from edgesam.eval.split import train_val
    from edgesam.models import create_model
    from edgesam.train.config import FinetuneConfig
    from edgesam_runtime.envinfo import machine_state

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=REPO / "runs" / "bench" / "scratch" / "seed0.pth")
    parser.add_argument("--data", type=Path, default=MAGNETIC_TILE)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)
    state = machine_state()
    result = {"machine": {"cpu_line": state["cpu_line"], "cpu_count": os.cpu_count(), "load_average": os.getloadavg()},
              "checkpoint": str(args.checkpoint), "labels": label_softness(args.data),
              "crack_widths": crack_widths(args.data), "variants": {}}
    result["centreline_ceiling"] = centreline_ceiling(args.data, result["crack_widths"])
    cfg = FinetuneConfig.from_yaml(args.checkpoint.with_suffix("") / "config.yaml")
    train_ds, val_ds = train_val(load_dataset(args.data, min_area=cfg.min_area), cfg.val_fraction, cfg.split_seed)
    train_cracks = train_ds.subset([i for i, r in enumerate(train_ds.records) if r.class_name == "crack"])
    model = create_model(checkpoint=args.checkpoint)
    result["model"] = {"val": class_scores(model, val_ds, "as trained"),
                       "train_crack": class_scores(model, train_cracks, "as trained, train cracks")["crack"]}
    result["thresholds"] = scores_by_threshold(args.checkpoint, val_ds, train_cracks)
    result["by_scale"] = {split: crack_iou_by_crop_scale(model, ds, cfg.image_size)
                          for split, ds in (("val", val_ds), ("train", train_ds))}
    for name in args.variants:
        width, depth, steps, affine, loss_kind = VARIANTS[name]
        start = time.perf_counter()
        probe = train_refiner(create_model(checkpoint=args.checkpoint), train_ds, cfg, width, depth, steps, affine,
                              loss_kind)
        seconds = time.perf_counter() - start
        result["variants"][name] = {"width": width, "depth": depth, "steps": steps, "affine": affine, "loss": loss_kind,
                                    "train_s": seconds,
                                    "val": class_scores(probe, val_ds, name),
                                    "train_crack": class_scores(probe, train_cracks, name)["crack"]}
        print(name, result["variants"][name], flush=True)
    result["load_after"] = os.getloadavg()
    result["command"] = flock_command(__file__)
    save(HERE, "crack_probe", result, markdown)


if __name__ == "__main__":
    main()
