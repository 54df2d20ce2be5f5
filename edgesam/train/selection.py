"""Which validated epoch a fine-tune keeps: the rule every epoch is ranked by, the start included.

Without replay an epoch's score is its val mIoU over every validation object. With `--replay` the
validation holds the new data's classes and the replayed ones; counting every object alike would let the
many old objects outweigh a new class with few (magnetic-tile's fray: 7 validation objects beside 78 old
ones), so no gain on the new data could ever show. There the score is the mean of the two groups' mean
class mIoU, and an epoch that loses more than `forget_limit` on the replayed classes against the start
is not eligible at all: gaining on the new data never buys forgetting beyond the limit.
"""
from __future__ import annotations

import math

import numpy as np


def class_groups(train_ds, replay_ds=None) -> dict:
    """The new data's class names and the replayed data's (those not also in the new data)."""
    new = sorted({r.class_name for r in train_ds.records})
    replayed = sorted({r.class_name for r in replay_ds.records} - set(new)) if replay_ds is not None else []
    return {"new": new, "replayed": replayed}


def group_mean(per_class: dict, names) -> float:
    """Mean class mIoU of `names` (NaN when none of them was scored)."""
    values = [per_class[n] for n in names if per_class.get(n) is not None]
    return float(np.mean(values)) if values else float("nan")


class EpochRule:
    """Ranks history rows ({"val_miou", "per_class", ...}); the start row (epoch 0) is the reference."""

    def __init__(self, groups: dict | None = None, forget_limit: float = 0.01):
        replayed = (groups or {}).get("replayed") or []
        self.groups = groups if replayed else None
        self.forget_limit = forget_limit

    @property
    def description(self) -> str:
        if self.groups is None:
            return "val mIoU"
        points = 100 * self.forget_limit
        return (f"mean of the new and the replayed classes' mIoU, losing at most {points:g} "
                f"point{'' if points == 1 else 's'} on the replayed classes")

    def score(self, row: dict) -> float:
        if self.groups is None:
            return float(row.get("val_miou", float("nan")))
        per_class = row.get("per_class") or {}
        new, old = group_mean(per_class, self.groups["new"]), group_mean(per_class, self.groups["replayed"])
        return float(np.nanmean([new, old])) if not (math.isnan(new) and math.isnan(old)) else float("nan")

    def eligible(self, row: dict, start: dict | None) -> bool:
        """Validated, and (with replay) within the forgetting limit of the start on the replayed classes."""
        if math.isnan(self.score(row)):
            return False
        if self.groups is None or start is None or row is start:
            return True
        old = group_mean(row.get("per_class") or {}, self.groups["replayed"])
        before = group_mean(start.get("per_class") or {}, self.groups["replayed"])
        return math.isnan(before) or old >= before - self.forget_limit - 1e-12

    def beats(self, row: dict, best_score: float, start: dict | None) -> bool:
        return self.eligible(row, start) and self.score(row) > best_score

    def best(self, history: list[dict]) -> dict:
        """The kept row: the eligible row with the highest score (the start when none beats it)."""
        start = history[0] if history and history[0].get("epoch") == 0 else None
        rows = [r for r in history if self.eligible(r, start)]
        return max(rows, key=self.score) if rows else {}
