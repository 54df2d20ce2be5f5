"""Which images a model is trained and scored on: the labelled images, split by `class/stem`.

Every verb that trains or scores on a dataset takes its images from here, so `finetune`'s held-out
validation images are exactly the images `eval --split val`, `bench --split val`, `prune` and the
pipeline report score on (`edgesam.data.split_by_stem` is the rule; this module applies it once).
"""
from __future__ import annotations

from edgesam.data import Dataset, load_dataset, split_by_stem

SPLITS = ("all", "val")


def labelled_images(dataset: Dataset) -> Dataset:
    """The images that carry ground truth (unlabelled ones, e.g. defect-free surfaces, cannot be scored)."""
    return dataset.subset([i for i, r in enumerate(dataset.records) if r.labelled])


def train_val(dataset: Dataset, val_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """(train, val) of the labelled images, stratified per class by `split_by_stem`."""
    return split_by_stem(labelled_images(dataset), val_fraction, seed)


def scoring_set(data, split: str = "all", val_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """The labelled images to score on: all of them, or the validation split `finetune` held out.

    `data` is a dataset path or a loaded `Dataset`; `val_fraction` and `seed` must be the finetune
    run's for `split="val"` to be its validation set.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    dataset = data if isinstance(data, Dataset) else load_dataset(data)
    if split == "val":
        return train_val(dataset, val_fraction, seed)[1]
    return labelled_images(dataset)


def distillation_split(dataset: Dataset, val_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """(train, val) for learning from a teacher: the labelled images split as `train_val` does, and
    every unlabelled image in train (a teacher needs no ground truth; only val is ever scored)."""
    _, val = train_val(dataset, val_fraction, seed)
    held_out = {r.key for r in val.records}
    return dataset.subset([i for i, r in enumerate(dataset.records) if r.key not in held_out]), val
