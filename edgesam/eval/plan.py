"""The prompt plan: which images are scored and the one prompt each ground-truth object gets.

A prompt is drawn from the object's own mask with a random generator seeded by
(seed, prompt kind, `class/stem`, object index): the same object gets the same prompt in `eval`,
`bench`, `check`, training validation, `prune` and the pipeline report, whatever images are
around it, in whatever order they are listed and however many are scored.

Which images are scored when `max_images` caps them is seeded the same way: classes take turns,
each class in the order of its images' `class/stem` hash, so a small cap still samples every class
and adding images to a dataset never reshuffles the others.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from edgesam.data import Dataset, Sample, sample_box, sample_points
from edgesam.data.split import stem_hash

PROMPT_KINDS = ("box", "point")


@dataclass(frozen=True)
class ImagePrompts:
    """One image of the plan and one prompt per ground-truth object, in original-image pixels."""

    index: int  # the record's index in the plan's dataset
    key: str  # class/stem
    class_name: str
    kind: str  # box | point
    areas: tuple  # ground-truth pixels per object
    boxes: np.ndarray | None = None  # (K, 4) xyxy, inclusive corners
    points: np.ndarray | None = None  # (K, 1, 2) one positive point per object
    labels: np.ndarray | None = None  # (K, 1)
    ground_truth: bool = True  # False: prompts placed without labels; only agreement with a reference is scored

    @property
    def num_prompts(self) -> int:
        return len(self.areas)

    @property
    def multimask(self) -> bool:
        """A single point is ambiguous: ask for SAM's three candidates and keep the most confident."""
        return self.kind == "point"

    def prompt_name(self, obj: int) -> str:
        return f"{self.key}#{obj}"


@dataclass
class PromptPlan:
    dataset: Dataset
    kind: str
    seed: int
    box_jitter: float
    items: list[ImagePrompts] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ImagePrompts]:
        return iter(self.items)

    @property
    def num_prompts(self) -> int:
        return sum(item.num_prompts for item in self.items)

    def samples(self) -> Iterator[tuple[ImagePrompts, Sample]]:
        """Each item with its image and ground-truth masks, read when needed (one image in memory)."""
        for item in self.items:
            sample = self.dataset.load(item.index)
            if item.ground_truth and sample.num_objects != item.num_prompts:
                raise ValueError(f"{sample.image_path}: {sample.num_objects} objects now, {item.num_prompts} when the "
                                 "prompt plan was drawn (was the dataset changed while scoring?)")
            yield item, sample

    def describe(self) -> dict:
        return {"data": str(self.dataset.root), "prompt": self.kind, "seed": self.seed, "box_jitter": self.box_jitter,
                "images": len(self.items), "prompts": self.num_prompts}


def object_rng(seed: int, kind: str, key: str, obj: int) -> np.random.Generator:
    """The generator of one object's prompt: depends on nothing but the object's identity and the seed."""
    words = np.frombuffer(hashlib.sha256(f"{kind}:{key}#{obj}".encode("utf-8")).digest()[:16], dtype="<u4")
    return np.random.default_rng([int(seed), *words.tolist()])


def draw_prompts(masks: np.ndarray, key: str, kind: str, seed: int, box_jitter: float = 0.0) -> dict:
    """Prompt arrays for the (K, H, W) objects of image `key`: {"boxes"} or {"points", "labels"}."""
    if kind not in PROMPT_KINDS:
        raise ValueError(f"prompt: expected one of {PROMPT_KINDS}, got {kind!r}")
    rngs = [object_rng(seed, kind, key, k) for k in range(len(masks))]
    if kind == "box":
        return {"boxes": np.stack([sample_box(m, r, box_jitter) for m, r in zip(masks, rngs)]).astype(np.float32)}
    drawn = [sample_points(m, r, n_pos=1) for m, r in zip(masks, rngs)]
    return {"points": np.stack([p for p, _ in drawn]).astype(np.float32),
            "labels": np.stack([lab for _, lab in drawn]).astype(np.float32)}


def image_order(dataset: Dataset, seed: int) -> list[int]:
    """Record indices, classes taking turns, each class in `class/stem` hash order."""
    by_class: dict[str, list[int]] = {}
    for i, record in enumerate(dataset.records):
        by_class.setdefault(record.class_name, []).append(i)
    queues = [sorted(ix, key=lambda i: (stem_hash(dataset.records[i], seed), i)) for _, ix in sorted(by_class.items())]
    order = []
    for rank in range(max((len(q) for q in queues), default=0)):
        order += [q[rank] for q in queues if rank < len(q)]
    return order


def build_plan(dataset: Dataset, kind: str = "box", seed: int = 0, box_jitter: float = 0.0,
               max_images: int | None = None) -> PromptPlan:
    """Up to `max_images` labelled images with at least one object (all of them by default).

    Items keep the dataset's order; an image without objects is skipped (nothing to prompt).
    """
    if kind not in PROMPT_KINDS:
        raise ValueError(f"prompt: expected one of {PROMPT_KINDS}, got {kind!r}")
    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images: expected a positive integer, got {max_images}")
    items = []
    for index in image_order(dataset, seed):
        if max_images is not None and len(items) >= max_images:
            break
        if not dataset.records[index].labelled:
            continue
        sample = dataset.load(index)
        if sample.num_objects:
            items.append(_item(index, sample, kind, seed, box_jitter))
    items.sort(key=lambda item: item.index)
    return PromptPlan(dataset, kind, seed, box_jitter, items)


def _item(index: int, sample: Sample, kind: str, seed: int, box_jitter: float) -> ImagePrompts:
    key = f"{sample.class_name}/{sample.stem}"
    areas = tuple(int(a) for a in sample.masks.reshape(sample.num_objects, -1).sum(axis=1))
    return ImagePrompts(index, key, sample.class_name, kind, areas,
                        **draw_prompts(sample.masks, key, kind, seed, box_jitter))
