"""Prompted-segmentation evaluation: mIoU, Dice, boundary F-score and HD95, per class and object size.

Prompts are drawn from the ground truth with a seed (the same objects get the same prompts for
every model), inference goes through `SamReferencePredictor` (all objects of an image in one
decoder call), and masks are scored at the original image resolution.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgesam import metrics
from edgesam.data import sample_box, sample_points
from edgesam.utils.files import write_json_atomic, write_text_atomic

SIZE_BUCKETS = (("small", 32 ** 2), ("medium", 96 ** 2), ("large", math.inf))  # COCO's, in original pixels
PROMPTS = ("box", "point")


@dataclass
class ObjectScore:
    image: str
    class_name: str
    area: int
    bucket: str
    iou: float
    dice: float
    bf: float | None = None  # boundary F-score (None when boundary metrics are off)
    hd95: float | None = None


@dataclass
class EvalReport:
    label: str
    prompt: str
    seed: int
    objects: list[ObjectScore] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def _summary(self, rows) -> dict:
        out = {"n": len(rows)}
        for key in ("iou", "dice", "bf", "hd95"):
            vals = [getattr(r, key) for r in rows if getattr(r, key) is not None and math.isfinite(getattr(r, key))]
            out[key] = float(np.mean(vals)) if vals else None
        out["miou"] = out.pop("iou")
        return out

    @property
    def overall(self) -> dict:
        return self._summary(self.objects)

    @property
    def miou(self) -> float:
        return self.overall["miou"] or 0.0

    def by(self, attr: str) -> dict[str, dict]:
        keys = sorted({getattr(o, attr) for o in self.objects})
        if attr == "bucket":
            keys = [b for b, _ in SIZE_BUCKETS if b in keys]
        return {k: self._summary([o for o in self.objects if getattr(o, attr) == k]) for k in keys}

    def to_dict(self, with_objects: bool = True) -> dict:
        d = {"label": self.label, "prompt": self.prompt, "seed": self.seed, "meta": self.meta,
             "overall": self.overall, "per_class": self.by("class_name"), "per_size": self.by("bucket")}
        if with_objects:
            d["objects"] = [asdict(o) for o in self.objects]
        return d

    def to_markdown(self) -> str:
        lines = [f"## {self.label} ({self.prompt} prompts, seed {self.seed})", "",
                 "| group | n | mIoU | Dice | boundary F | HD95 (px) |", "|---|---|---|---|---|---|"]
        rows = [("all", self.overall)] + list(self.by("class_name").items()) + \
            [(f"size: {k}", v) for k, v in self.by("bucket").items()]
        lines += [f"| {name} | {s['n']} | {_f(s['miou'])} | {_f(s['dice'])} | {_f(s['bf'])} | {_f(s['hd95'], 1)} |"
                  for name, s in rows]
        return "\n".join(lines) + "\n"


def _f(v, digits=4):
    return "n/a" if v is None else f"{v:.{digits}f}"


def size_bucket(area: int) -> str:
    return next(name for name, limit in SIZE_BUCKETS if area < limit)


def draw_eval_prompts(masks: np.ndarray, prompt: str, rng: np.random.Generator, box_jitter: float):
    """Per-object prompts in original pixels: boxes (K, 4) or single positive points (K, 1, 2)."""
    if prompt == "box":
        return np.stack([sample_box(m, rng, box_jitter) for m in masks]), None
    return None, np.stack([sample_points(m, rng, 1, 0)[0] for m in masks])


def predict_masks(predictor, image, boxes, points) -> np.ndarray:
    """(K, H, W) bool masks: one decoder call for all K objects of the image."""
    predictor.set_image(image)
    if boxes is not None:
        return predictor.predict(boxes=boxes).masks[:, 0]
    labels = np.ones(points.shape[:2], np.float32)
    return predictor.predict(point_coords=points, point_labels=labels, multimask=True).best().masks[:, 0]


def box_fill_masks(image, boxes, points) -> np.ndarray:
    """Baseline 'model': each prompt box filled (inclusive corners) as the predicted mask."""
    if boxes is None:
        raise ValueError("prompt: the box-filled baseline needs box prompts")
    h, w = image.shape[:2]
    out = np.zeros((len(boxes), h, w), dtype=bool)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        out[k, int(round(y0)):int(round(y1)) + 1, int(round(x0)):int(round(x1)) + 1] = True
    return out


def evaluate(model, dataset, prompt: str = "box", seed: int = 0, *, box_jitter: float = 0.0, label: str = "model",
             boundary: bool = True, max_images: int | None = None, device: str = "cpu", meta: dict | None = None,
             progress: bool = False) -> EvalReport:
    """Score `model` (a Sam; None = box-filled baseline) on every object of `dataset`."""
    if prompt not in PROMPTS:
        raise ValueError(f"prompt: expected one of {PROMPTS}, got {prompt!r}")
    if model is None:
        infer = lambda image, boxes, points: box_fill_masks(image, boxes, points)  # noqa: E731
    else:
        from edgesam.predict import SamReferencePredictor

        predictor = SamReferencePredictor(model, device)
        infer = lambda image, boxes, points: predict_masks(predictor, image, boxes, points)  # noqa: E731
    report = EvalReport(label, prompt, seed, meta=dict(meta or {}))
    indices = range(len(dataset))
    if max_images is not None and max_images < len(dataset):  # evenly spread, so every class is sampled
        indices = sorted(set(np.linspace(0, len(dataset) - 1, max_images).round().astype(int).tolist()))
    for i in _maybe_tqdm(indices, progress, label):
        sample = dataset.load(i)
        if sample.masks.shape[0] == 0:
            continue
        rng = np.random.default_rng([seed, i])
        boxes, points = draw_eval_prompts(sample.masks, prompt, rng, box_jitter)
        preds = infer(sample.image, boxes, points)
        report.objects += score_objects(preds, sample.masks, f"{sample.class_name}/{sample.stem}",
                                        sample.class_name, boundary)
    report.meta.setdefault("images", len(indices))
    return report


def score_objects(preds, gts, image_name, class_name, boundary=True) -> list[ObjectScore]:
    ious = metrics.batch_iou(preds, gts)
    out = []
    for k, (p, g) in enumerate(zip(preds, gts)):
        area = int(g.sum())
        out.append(ObjectScore(image_name, class_name, area, size_bucket(area), float(ious[k]), metrics.dice(p, g),
                               metrics.boundary_fscore(p, g) if boundary else None,
                               metrics.hd95(p, g) if boundary else None))
    return out


def _maybe_tqdm(it, progress, desc):
    if not progress:
        return it
    from tqdm import tqdm

    return tqdm(it, desc=f"eval {desc}", leave=False)


def compare_reports(base: EvalReport, tuned: EvalReport) -> dict:
    """Side-by-side figures per group with the gain (tuned - base); HD95 gain is base - tuned (lower is better)."""
    if base.prompt != tuned.prompt or base.seed != tuned.seed or len(base.objects) != len(tuned.objects):
        raise ValueError("compare_reports: reports must cover the same objects with the same prompts and seed")
    groups = {"all": (base.overall, tuned.overall)}
    for attr, prefix in (("class_name", ""), ("bucket", "size: ")):
        b, t = base.by(attr), tuned.by(attr)
        groups.update({prefix + k: (b[k], t[k]) for k in b})
    table = {}
    for name, (b, t) in groups.items():
        row = {"n": b["n"]}
        for key in ("miou", "dice", "bf", "hd95"):
            row[key] = {"base": b[key], "tuned": t[key], "gain": _gain(b[key], t[key], lower_better=key == "hd95")}
        table[name] = row
    return {"base": base.label, "tuned": tuned.label, "prompt": base.prompt, "seed": base.seed, "groups": table}


def _gain(b, t, lower_better=False):
    if b is None or t is None:
        return None
    return (b - t) if lower_better else (t - b)


def comparison_markdown(cmp: dict) -> str:
    lines = [f"## {cmp['tuned']} vs {cmp['base']} ({cmp['prompt']} prompts, seed {cmp['seed']})", "",
             "| group | n | mIoU base | mIoU tuned | gain | Dice base | Dice tuned | gain | BF gain | HD95 gain (px) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in cmp["groups"].items():
        m, d = r["miou"], r["dice"]
        lines.append(f"| {name} | {r['n']} | {_f(m['base'])} | {_f(m['tuned'])} | {_signed(m['gain'])} | "
                     f"{_f(d['base'])} | {_f(d['tuned'])} | {_signed(d['gain'])} | {_signed(r['bf']['gain'])} | "
                     f"{_signed(r['hd95']['gain'], 1)} |")
    return "\n".join(lines) + "\n"


def _signed(v, digits=4):
    return "n/a" if v is None else f"{v:+.{digits}f}"


def write_report(report_or_cmp, out_dir: str | Path, name: str = "eval") -> tuple[Path, Path]:
    """Write `<name>.json` and `<name>.md` atomically; accepts an EvalReport or a compare_reports dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(report_or_cmp, EvalReport):
        data, md = report_or_cmp.to_dict(), report_or_cmp.to_markdown()
    else:
        data, md = report_or_cmp, comparison_markdown(report_or_cmp)
    jp, mp = out / f"{name}.json", out / f"{name}.md"
    write_json_atomic(jp, _clean(data))
    write_text_atomic(mp, md)
    return jp, mp


def _clean(v):
    """JSON-safe copy: numpy scalars to Python, inf/NaN (e.g. HD95 of a missed object) to None."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run_eval(checkpoint, data, prompt="box", seed=0, *, adapter=None, base=None, box_jitter=0.0, split="all",
             val_fraction=0.2, image_size=None, out=None) -> str:
    """What `edgesam eval` does: evaluate one model, or a tuned model against a base; returns markdown.

    With `adapter` (a finetune run dir) the tuned model is the checkpoint with that adapter merged
    (verified by `merge_run`) and the base is the checkpoint itself.
    """
    import tempfile

    from edgesam.data import load_dataset, split_by_stem
    from edgesam.models import load_model

    ds = load_dataset(data)
    ds = ds.subset([i for i, r in enumerate(ds.records) if r.labelled])
    if split == "val":
        ds = split_by_stem(ds, val_fraction, seed)[1]
    tuned_path, base_path = Path(checkpoint), Path(base) if base else None
    with tempfile.TemporaryDirectory() as tmp:
        if adapter:
            from edgesam.train.merge import merge_run

            base_path = tuned_path
            tuned_path = Path(tmp) / "merged.pth"
            merge_run(adapter, tuned_path, base=base_path)
        reports = []
        for path in ([base_path] if base_path else []) + [tuned_path]:
            model, arch = load_model(None, path, image_size)
            init = arch.extra.get("init", "pretrained")
            label = Path(adapter).name + " (adapter)" if adapter and path == tuned_path else Path(path).name
            label += " [init: random]" if init == "random" else ""
            reports.append(evaluate(model, ds, prompt, seed, box_jitter=box_jitter, label=label, progress=True,
                                    meta={"checkpoint": str(path), "init": init, "variant": arch.variant,
                                          "image_size": arch.image_size, "split": split}))
    if len(reports) == 1:
        if out:
            write_report(reports[0], out)
        return reports[0].to_markdown()
    cmp = compare_reports(*reports)
    if out:
        write_report(reports[0], out, "eval_base")
        write_report(reports[1], out, "eval_tuned")
        write_report(cmp, out, "eval_comparison")
    return comparison_markdown(cmp)
