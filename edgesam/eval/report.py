"""Summaries of prompt records: per class and object size, one model or base vs tuned; JSON and markdown."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesam.eval.scoring import SIZE_BUCKETS, PromptRecord
from edgesam_runtime.files import write_json_atomic, write_text_atomic

FIGURES = ("miou", "dice", "bf", "hd95")


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def summarize_records(records: list[PromptRecord]) -> dict:
    """n, mIoU, Dice, boundary F, HD95 (undefined and infinite values left out) and the empty predictions."""
    return {"n": len(records), "miou": _mean(r.iou for r in records), "dice": _mean(r.dice for r in records),
            "bf": _mean(r.bf for r in records), "hd95": _mean(r.hd95 for r in records),
            "empty_predictions": sum(r.pred_empty for r in records)}


@dataclass
class EvalReport:
    label: str
    prompt: str
    seed: int
    records: list[PromptRecord] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def overall(self) -> dict:
        return summarize_records(self.records)

    @property
    def miou(self) -> float:
        """Mean IoU against ground truth over every prompt (0.0 when nothing was scored)."""
        return self.overall["miou"] or 0.0

    def by(self, attr: str) -> dict[str, dict]:
        keys = sorted({getattr(r, attr) for r in self.records})
        if attr == "bucket":
            keys = [b for b, _ in SIZE_BUCKETS if b in keys]
        return {k: summarize_records([r for r in self.records if getattr(r, attr) == k]) for k in keys}

    def empty_predictions(self) -> list[str]:
        return [r.name for r in self.records if r.pred_empty]

    def to_dict(self, with_records: bool = True) -> dict:
        d = {"label": self.label, "prompt": self.prompt, "seed": self.seed, "meta": self.meta,
             "overall": self.overall, "per_class": self.by("class_name"), "per_size": self.by("bucket"),
             "empty_predictions": self.empty_predictions()}
        if with_records:
            d["records"] = [r.to_dict() for r in self.records]
        return d

    def to_markdown(self) -> str:
        lines = [f"## {self.label} ({self.prompt} prompts, seed {self.seed})", "",
                 "| group | n | mIoU | Dice | boundary F | HD95 (px) | empty masks |", "|---|---|---|---|---|---|---|"]
        rows = [("all", self.overall)] + list(self.by("class_name").items()) + \
            [(f"size: {k}", v) for k, v in self.by("bucket").items()]
        lines += [f"| {name} | {s['n']} | {_f(s['miou'])} | {_f(s['dice'])} | {_f(s['bf'])} | {_f(s['hd95'], 1)} | "
                  f"{s['empty_predictions']} |" for name, s in rows]
        empty = self.empty_predictions()
        if empty:
            lines += ["", f"**{len(empty)} of {len(self.records)} predicted masks are empty** "
                          f"(each scores IoU 0 against its object): {_names(empty)}."]
        return "\n".join(lines) + "\n"


def _names(names: list[str], limit: int = 8) -> str:
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" (+{more} more)" if more > 0 else "")


def _f(v, digits=4):
    return "n/a" if v is None else f"{v:.{digits}f}"


def _signed(v, digits=4):
    return "n/a" if v is None else f"{v:+.{digits}f}"


def compare_reports(base: EvalReport, tuned: EvalReport) -> dict:
    """Side-by-side figures per group with the gain (tuned - base); HD95 gain is base - tuned (lower is better)."""
    if base.prompt != tuned.prompt or base.seed != tuned.seed or \
            [r.name for r in base.records] != [r.name for r in tuned.records]:
        raise ValueError("compare_reports: reports must cover the same objects with the same prompts and seed")
    groups = {"all": (base.overall, tuned.overall)}
    for attr, prefix in (("class_name", ""), ("bucket", "size: ")):
        b, t = base.by(attr), tuned.by(attr)
        groups.update({prefix + k: (b[k], t[k]) for k in b})
    table = {}
    for name, (b, t) in groups.items():
        row = {"n": b["n"], "empty_predictions": {"base": b["empty_predictions"], "tuned": t["empty_predictions"]}}
        for key in FIGURES:
            row[key] = {"base": b[key], "tuned": t[key], "gain": _gain(b[key], t[key], lower_better=key == "hd95")}
        table[name] = row
    return {"base": base.label, "tuned": tuned.label, "prompt": base.prompt, "seed": base.seed, "groups": table}


def _gain(b, t, lower_better=False):
    if b is None or t is None:
        return None
    return (b - t) if lower_better else (t - b)


def comparison_markdown(cmp: dict) -> str:
    lines = [f"## {cmp['tuned']} vs {cmp['base']} ({cmp['prompt']} prompts, seed {cmp['seed']})", "",
             "| group | n | mIoU base | mIoU tuned | gain | Dice base | Dice tuned | gain | BF gain | HD95 gain (px) "
             "| empty masks base / tuned |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in cmp["groups"].items():
        m, d, e = r["miou"], r["dice"], r["empty_predictions"]
        lines.append(f"| {name} | {r['n']} | {_f(m['base'])} | {_f(m['tuned'])} | {_signed(m['gain'])} | "
                     f"{_f(d['base'])} | {_f(d['tuned'])} | {_signed(d['gain'])} | {_signed(r['bf']['gain'])} | "
                     f"{_signed(r['hd95']['gain'], 1)} | {e['base']} / {e['tuned']} |")
    return "\n".join(lines) + "\n"


def write_report(report_or_cmp, out_dir: str | Path, name: str = "eval") -> tuple[Path, Path]:
    """Write `<name>.json` and `<name>.md` atomically; accepts an EvalReport or a compare_reports dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(report_or_cmp, EvalReport):
        data, md = report_or_cmp.to_dict(), report_or_cmp.to_markdown()
    else:
        data, md = report_or_cmp, comparison_markdown(report_or_cmp)
    jp, mp = out / f"{name}.json", out / f"{name}.md"
    write_json_atomic(jp, json_safe(data))
    write_text_atomic(mp, md)
    return jp, mp


def json_safe(v):
    """JSON-safe copy: numpy scalars to Python, inf/NaN (an undefined or missed figure) to None."""
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if isinstance(v, (np.floating, np.integer, np.bool_)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
