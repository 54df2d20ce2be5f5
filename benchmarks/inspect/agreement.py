"""Benchmark: verdicts from predicted masks vs verdicts from the ground-truth masks, same rules, same boxes.

On magnetic-tile's validation split (the one `finetune` held out: 0.2, split seed 0), every image's ground-
truth objects get their tight box as the prompt (the eval plan, seed 0). The bundle segments each box; the
`Inspector` measures and judges the predicted masks, and judges the ground-truth masks of the same boxes
under the same rules (no quality figures for those: the floors do not apply). An image agrees when both
part verdicts are equal; a REVIEW against an OK or NG counts as a disagreement.

Besides the committed rules file, the same run reports (as sensitivity, not as the result):
- the committed rules plus a crack width limit (`max_width_mm` at its training-split 75th percentile),
- the rules without the quality floor,
- every limit at the 50th, 75th and 90th percentile of the training split's ground truth.

Reproduce (repo root; the bundle from `edgesam finetune --model vit_t --init random --seed 0`, merge, export):
  python benchmarks/inspect/agreement.py --bundle runs/bundle_s0
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from places import DATA, HERE, REPO, shown  # noqa: E402

sys.path.insert(0, str(REPO))

from edgesam.data import load_dataset  # noqa: E402
from edgesam.eval.plan import build_plan  # noqa: E402
from edgesam.eval.scoring import score_masks  # noqa: E402
from edgesam.eval.split import train_val  # noqa: E402
from edgesam_runtime.defect_prompts import DefectPrompt  # noqa: E402
from edgesam_runtime.inspector import Inspector  # noqa: E402
from edgesam_runtime.measure import measure_mask  # noqa: E402
from edgesam_runtime.rules import load_rules, parse_rules  # noqa: E402

TARGET = 0.95
# the figure each class is limited on in the committed file (the sweep moves these limits)
LIMITED = {"blowhole": ["max_area_mm2"], "break": ["max_area_mm2"], "crack": ["max_length_mm"],
           "fray": ["max_area_mm2"], "uneven": ["max_area_mm2"]}
FIGURE = {"max_area_mm2": "area_mm2", "max_length_mm": "length_mm", "max_width_mm": "max_width_mm"}


def percentile_limits(train_figures: dict, q: float, extra: dict | None = None) -> dict:
    """Limits at the q-th percentile of the training split's ground truth, two significant digits."""
    limited = {c: list(v) + (extra or {}).get(c, []) for c, v in LIMITED.items()}
    return {c: {lim: float(f"{np.percentile(train_figures[c][FIGURE[lim]], q):.2g}") for lim in lims}
            for c, lims in limited.items()}


def train_ground_truth(train, calibration) -> dict:
    figures = defaultdict(lambda: defaultdict(list))
    for i in range(len(train)):
        sample = train.load(i)
        for mask in sample.masks:
            m = measure_mask(mask, calibration)
            for name in set(FIGURE.values()):
                figures[sample.class_name][name].append(m.value(name))
    return figures


def answer_val(inspector: Inspector, val) -> list[dict]:
    """Per image: the prompts, predicted and ground-truth masks' inspections (masks dropped), IoU records."""
    plan = build_plan(val, "box", seed=0)
    out = []
    for item, sample in plan.samples():
        prompts = [DefectPrompt(tuple(map(float, b)), item.class_name) for b in item.boxes]
        predicted = inspector.inspect(sample.image, prompts)
        masks = np.stack([d.mask for d in predicted.defects])
        records = score_masks(item, masks, sample.masks)
        out.append({"key": item.key, "class": item.class_name, "prompts": prompts, "masks": masks,
                    "gt_masks": sample.masks, "predicted": predicted, "ious": [r.iou for r in records]})
    return out


def agreement(rules, images: list[dict], inspector: Inspector) -> dict:
    """Part verdicts of predicted vs ground-truth masks under `rules` (re-judging the kept measurements)."""
    confusion, per_class, disagreements = Counter(), defaultdict(lambda: [0, 0]), []
    for im in images:
        pred_defects = [(d.prompt.class_name, d.measurement, rules.judge_defect(d.prompt.class_name, d.measurement))
                        for d in im["predicted"].defects]
        pred = rules.judge_part(pred_defects)
        gt = Inspector(inspector.segmenter, rules).judge(im["prompts"], im["gt_masks"], keep_masks=False).verdict
        confusion[(gt.verdict, pred.verdict)] += 1
        per_class[im["class"]][0] += gt.verdict == pred.verdict
        per_class[im["class"]][1] += 1
        if gt.verdict != pred.verdict:
            disagreements.append({"image": im["key"], "ground_truth": gt.verdict, "predicted": pred.verdict,
                                  "ground_truth_rule": gt.rule, "predicted_rule": pred.rule})
    agree = sum(n for (g, p), n in confusion.items() if g == p)
    return {"images": len(images), "agree": agree, "agreement": agree / len(images),
            "confusion": {f"{g}->{p}": n for (g, p), n in sorted(confusion.items())},
            "ground_truth_verdicts": dict(Counter(g for (g, _), n in confusion.items() for _ in range(n))),
            "per_class": {c: {"agree": a, "images": n, "agreement": a / n} for c, (a, n) in sorted(per_class.items())},
            "disagreements": disagreements}


def variant(base: dict, classes: dict | None = None, drop_quality: bool = False) -> dict:
    out = json.loads(json.dumps(base))
    if classes is not None:
        for c, limits in classes.items():
            keep = {k: v for k, v in out["classes"].get(c, {}).items() if k not in FIGURE}
            out["classes"][c] = {**limits, **keep}
    if drop_quality:
        out.pop("quality", None)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--rules", default=str(HERE / "magnetic_tile_rules.yaml"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "results"))
    args = ap.parse_args()

    import yaml

    committed = dataclasses.replace(load_rules(args.rules), source=shown(args.rules))
    raw = yaml.safe_load(Path(args.rules).read_text())
    inspector = Inspector.open(args.bundle, rules=committed, threads=args.threads)
    train, val = train_val(load_dataset(args.data), 0.2, 0)
    images = answer_val(inspector, val)
    train_figures = train_ground_truth(train, committed.calibration)
    ious = [v for im in images for v in im["ious"]]
    empty = sum(not d.mask.any() for im in images for d in im["predicted"].defects)
    result = {"committed": {"rules": committed.to_dict(), **agreement(committed, images, inspector)}}
    width = percentile_limits(train_figures, 75, {"crack": ["max_width_mm"]})
    variants = {
        "with_crack_width_p75": variant(raw, {"crack": width["crack"]}),
        "without_quality_floor": variant(raw, drop_quality=True),
        **{f"limits_at_train_p{q}": variant(raw, percentile_limits(train_figures, q)) for q in (50, 75, 90)},
    }
    result["sensitivity"] = {}
    for name, spec in variants.items():
        rules = parse_rules(spec, name)
        figures = agreement(rules, images, inspector)
        figures.pop("disagreements")
        result["sensitivity"][name] = {"classes": rules.to_dict()["classes"], **figures}
    result.update({
        "target": TARGET, "met": result["committed"]["agreement"] >= TARGET,
        "bundle": shown(args.bundle), "data": shown(args.data), "split": "val (0.2, split seed 0)", "prompts": "tight ground-truth boxes",
        "val_images": len(images), "val_objects": len(ious), "val_mIoU": float(np.mean(ious)),
        "empty_predicted_masks": int(empty),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    })
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "agreement.json").write_text(json.dumps(result, indent=2) + "\n")
    c = result["committed"]
    print(f"agreement {c['agree']}/{c['images']} = {c['agreement']:.3f} (target {TARGET}); val mIoU "
          f"{result['val_mIoU']:.4f}; confusion {c['confusion']}")
    for name, figures in result["sensitivity"].items():
        print(f"  {name}: {figures['agreement']:.3f} {figures['confusion']}")


if __name__ == "__main__":
    main()
