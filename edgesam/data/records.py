"""What a dataset is made of: an image's record (where its pixels and labels live) and a loaded sample."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset and where its labels live (no pixels).

    ``mask_path`` is set for images/ + masks/ layouts; ``coco_anns`` holds the image's COCO
    annotations (dicts with ``id``, ``category``, ``segmentation``, ``iscrowd``, ``image_size``)
    for COCO layouts; both are None for unlabelled images.
    """

    stem: str
    class_name: str
    image_path: Path
    mask_path: Path | None = None
    coco_anns: tuple | None = field(default=None, hash=False)

    @property
    def key(self) -> str:
        """Stable identity used by the split: ``class_name/stem``."""
        return f"{self.class_name}/{self.stem}"

    @property
    def labelled(self) -> bool:
        return self.mask_path is not None or self.coco_anns is not None


@dataclass
class Sample:
    """A loaded image with its objects: ``masks`` is bool [K,H,W] (K may be 0)."""

    stem: str
    class_name: str
    image: np.ndarray
    masks: np.ndarray
    image_path: Path

    @property
    def num_objects(self) -> int:
        return int(self.masks.shape[0])
