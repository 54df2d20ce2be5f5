"""The images and prompts every format sees: drawn once, deterministically, from the ground truth."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgesam.data import load_dataset, sample_box, sample_points, split_by_stem


@dataclass
class BenchItem:
    """One image, its ground-truth objects (K, H, W) and one prompt per object."""

    name: str
    image: np.ndarray
    gt: np.ndarray
    boxes: np.ndarray | None  # (K, 4) xyxy
    points: np.ndarray | None  # (K, 1, 2)
    labels: np.ndarray | None  # (K, 1)

    @property
    def prompt_kwargs(self) -> dict:
        if self.boxes is not None:
            return {"boxes": self.boxes}
        return {"points": self.points, "labels": self.labels}

    @property
    def num_prompts(self) -> int:
        return len(self.gt)


def build_plan(data: str, max_images: int, prompt: str, seed: int, jitter: float = 0.1,
               split: str = "all", val_fraction: float = 0.2, split_seed: int = 0) -> list[BenchItem]:
    """Up to `max_images` labelled images with objects, in a seeded order spread over the classes.

    `split="val"` keeps only the validation split that `edgesam finetune` held out (same
    `split_by_stem` rule and seed), so a fine-tuned model is never scored on its training images.
    """
    ds = load_dataset(data)
    if split == "val":
        ds = split_by_stem(ds, val_fraction, split_seed)[1]
    order = np.random.default_rng(seed).permutation(len(ds.records))
    items = []
    for index in order:
        if len(items) >= max_images:
            break
        if not ds.records[index].labelled:
            continue
        sample = ds.load(int(index))
        if sample.num_objects == 0:
            continue
        items.append(_item(sample, prompt, np.random.default_rng([seed, int(index)]), jitter))
    if not items:
        raise ValueError(f"{data}: no labelled image with at least one object to benchmark on")
    return items


def _item(sample, prompt: str, rng: np.random.Generator, jitter: float) -> BenchItem:
    name = f"{sample.class_name}/{sample.stem}"
    if prompt == "box":
        boxes = np.stack([sample_box(m, rng, jitter) for m in sample.masks]).astype(np.float32)
        return BenchItem(name, sample.image, sample.masks, boxes, None, None)
    pts = [sample_points(m, rng, n_pos=1) for m in sample.masks]
    points = np.stack([p for p, _ in pts]).astype(np.float32)
    labels = np.stack([lab for _, lab in pts]).astype(np.float32)
    return BenchItem(name, sample.image, sample.masks, None, points, labels)
