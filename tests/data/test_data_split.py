"""split_by_stem: deterministic, disjoint, complete, order-independent, stratified, stable."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgesam.data import Dataset, ImageRecord, split_by_stem


def _dataset(counts: dict[str, int], order=None) -> Dataset:
    recs = [ImageRecord(f"img{i:03d}", cls, Path(f"{cls}/images/img{i:03d}.png"), Path(f"{cls}/masks/img{i:03d}.png"))
            for cls, n in counts.items() for i in range(n)]
    if order is not None:
        recs = [recs[i] for i in order]
    return Dataset("root", recs)


def _keys(ds: Dataset) -> set[str]:
    return {r.key for r in ds.records}


def test_disjoint_complete_deterministic():
    ds = _dataset({"a": 100, "b": 40})
    train, val = split_by_stem(ds, 0.2, seed=0)
    assert _keys(train).isdisjoint(_keys(val))
    assert _keys(train) | _keys(val) == _keys(ds)
    train2, val2 = split_by_stem(ds, 0.2, seed=0)
    assert [r.key for r in val2.records] == [r.key for r in val.records]
    assert _keys(split_by_stem(ds, 0.2, seed=1)[1]) != _keys(val)
    assert train.classes == val.classes == ["a", "b"]


def test_independent_of_record_order():
    ds = _dataset({"a": 60, "b": 25})
    reversed_ds = _dataset({"a": 60, "b": 25}, order=list(range(84, -1, -1)))
    assert _keys(split_by_stem(ds)[1]) == _keys(split_by_stem(reversed_ds)[1])


def test_stratified_fractions():
    ds = _dataset({"a": 400, "b": 200, "c": 2, "d": 1})
    _, val = split_by_stem(ds, 0.25, seed=0)
    per = {c: sum(r.class_name == c for r in val.records) for c in "abcd"}
    assert 0.18 <= per["a"] / 400 <= 0.32 and 0.16 <= per["b"] / 200 <= 0.34
    assert per["c"] == 1  # >= 2 records: one val and one train
    assert per["d"] <= 1


def test_adding_images_keeps_existing_assignment():
    small = _dataset({"a": 50, "b": 20})
    big = _dataset({"a": 80, "b": 35})
    _, val_small = split_by_stem(small, 0.2, seed=5)
    _, val_big = split_by_stem(big, 0.2, seed=5)
    old = _keys(small)
    assert _keys(val_big) & old == _keys(val_small)


def test_rejects_bad_fraction():
    with pytest.raises(ValueError):
        split_by_stem(_dataset({"a": 3}), 1.0)
