"""Deterministic, stratified train/val split keyed on ``class_name/stem``.

Each record gets a pseudo-random number from ``sha256(f"{seed}:{class}/{stem}")``; it goes to
val when that number is below ``val_fraction``. Membership therefore depends only on the record
itself and the seed: file-listing order does not matter, and adding images never moves an existing
image between train and val (so a later model never trains on an earlier val image). The price is
that per-class val counts follow a binomial around ``val_fraction * n`` instead of being exact;
each class with >= 2 records is guaranteed at least one val and one train record.
"""

from __future__ import annotations

import hashlib

from .datasets import Dataset
from .records import ImageRecord

_SCALE = float(2**64)


def stem_hash(record: ImageRecord, seed: int) -> float:
    """Uniform number in [0, 1) from the record's ``class_name/stem`` and the seed."""
    digest = hashlib.sha256(f"{seed}:{record.key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def _split_class(indices: list[int], scores: dict[int, float], val_fraction: float) -> list[int]:
    """Val indices of one class: under the threshold, corrected so both sides are non-empty."""
    ranked = sorted(indices, key=lambda i: (scores[i], i))
    val = [i for i in ranked if scores[i] < val_fraction]
    if len(ranked) >= 2 and not val:
        val = ranked[:1]  # the lowest score: the record that joins val first as the fraction grows
    if len(ranked) >= 2 and len(val) == len(ranked):
        val = val[:-1]
    return val


def split_by_stem(dataset: Dataset, val_fraction: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Split into (train, val) datasets, stratified per class (see module docstring).

    Both keep the dataset's class vocabulary and settings. Record order inside each split follows
    the original dataset.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    scores = {i: stem_hash(r, seed) for i, r in enumerate(dataset.records)}
    by_class: dict[str, list[int]] = {}
    for i, r in enumerate(dataset.records):
        by_class.setdefault(r.class_name, []).append(i)
    val: set[int] = set()
    for indices in by_class.values():
        val.update(_split_class(indices, scores, val_fraction))
    train_idx = [i for i in range(len(dataset)) if i not in val]
    val_idx = [i for i in range(len(dataset)) if i in val]
    return dataset.subset(train_idx), dataset.subset(val_idx)
