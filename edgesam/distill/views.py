"""What the teacher and the student both see: a fixed set of encoder inputs ("views") per image.

View 0 of an image is the input the model gets at inference; views 1.. are augmented copies
(flips, small rotations, tone, noise, blur: the same `Augmenter` finetune uses). Each view is a
pure function of the image's pixels, the seed and the view index, so the student, trained later or
after a restart, sees exactly the input the teacher's cached embedding was computed from; the
cache key is the hash of that input itself, so a changed image, augmentation, input size or
framing can never be served a stale embedding.

Framing follows the teacher: whole-image models see the padded, resized image; ROI models see
square crops around boxes, resized to the input size, as at inference. Distillation needs no masks,
so ROI views are cut around boxes of random position and size.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from edgesam import geometry
from edgesam.data import AugmentConfig, Augmenter, sample_box

IMAGE_MODE, ROI_MODE = "image", "roi"


@dataclass(frozen=True)
class View:
    x: np.ndarray  # (1, 3, S, S) float32, normalized: the encoder input of teacher and student
    key: str  # sha256 of x: the teacher cache key
    boxes: np.ndarray  # (K, 4) xyxy box prompts in the input frame (S x S pixels)
    dense: np.ndarray | None = None  # (K, 1, S/4, S/4) dense box prompt of ROI models that use one


def input_key(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()


def image_tag(image: np.ndarray) -> int:
    """A seed component from the pixels (not the file name): renaming an image keeps its views."""
    digest = hashlib.sha256(np.ascontiguousarray(image).tobytes() + str(image.shape).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def random_boxes(rng: np.random.Generator, hw: tuple[int, int], count: int, side: tuple[float, float]) -> np.ndarray:
    """`count` xyxy boxes inside an HxW frame; each side log-uniform in `side` x the frame's short side."""
    h, w = hw
    short = min(h, w)
    lo, hi = np.log(side[0] * short), np.log(side[1] * short)
    out = np.zeros((count, 4), np.float32)
    for k in range(count):
        bw, bh = np.minimum(np.exp(rng.uniform(lo, hi, size=2)), [w - 1, h - 1]).clip(min=1.0)
        x0, y0 = rng.uniform(0, w - 1 - bw), rng.uniform(0, h - 1 - bh)
        out[k] = (x0, y0, x0 + bw, y0 + bh)
    return out


def teacher_framing(arch) -> dict:
    """The teacher's input framing as a plain dict ({"mode": "image"} when it records none)."""
    framing = dict(arch.extra.get("framing") or {"mode": IMAGE_MODE})
    if framing.get("mode", IMAGE_MODE) not in (IMAGE_MODE, ROI_MODE):
        raise ValueError(f"teacher: unknown input framing {framing!r}; expected mode 'image' or 'roi'")
    framing.setdefault("mode", IMAGE_MODE)
    return framing


class ViewMaker:
    """Makes view `index` of an image; see the module docstring."""

    def __init__(self, image_size: int, framing: dict, augment: AugmentConfig, seed: int,
                 roi_box_side: tuple[float, float] = (0.05, 0.6), prompts: int = 4):
        self.size, self.framing, self.seed = image_size, dict(framing), seed
        self.augmenter = Augmenter(augment, seed)
        self.roi_box_side, self.prompts = tuple(roi_box_side), prompts
        self.roi = None
        if self.framing["mode"] == ROI_MODE:
            try:
                from edgesam import roi
            except ImportError:
                raise ValueError("teacher: it records ROI framing, but this edgesam has no edgesam.roi") from None
            self.roi, self.roi_framing = roi, roi.InputFraming.from_dict(self.framing)

    def recipe(self) -> dict:
        """What the views depend on besides the pixels (recorded next to the cache for people to read)."""
        return {"image_size": self.size, "framing": self.framing, "seed": self.seed,
                "augment": self.augmenter.config.to_dict(), "roi_box_side": list(self.roi_box_side)}

    def view(self, image: np.ndarray, index: int, masks: np.ndarray | None = None) -> View:
        """View `index` of `image`; `masks` (K, H, W), where labels exist, place the box prompts on objects.

        The pixels of a view do not depend on `masks` (the augmenter draws the same numbers either way).
        """
        rng = np.random.default_rng([self.seed, image_tag(image), index])
        masks = np.zeros((0,) + image.shape[:2], bool) if masks is None else np.asarray(masks, bool)
        if index > 0:
            image, masks = self.augmenter(image, masks, rng)
        if self.roi is not None:
            return self._roi_view(image, rng)
        x, hw, _ = geometry.preprocess(image, self.size)
        boxes = [sample_box(m, rng, 0.1) for m in masks[: self.prompts]]
        boxes = np.concatenate([np.asarray(boxes, np.float32).reshape(-1, 4),
                                random_boxes(rng, hw, self.prompts - len(boxes), self.roi_box_side)])
        return View(x, input_key(x), geometry.transform_boxes(boxes, hw, self.size).astype(np.float32))

    def _roi_view(self, image: np.ndarray, rng: np.random.Generator) -> View:
        """A square crop around one random box, resized to the input size (what an ROI model sees)."""
        roi, framing = self.roi, self.roi_framing
        rgb = geometry.to_rgb_uint8(image)
        box = random_boxes(rng, rgb.shape[:2], 1, self.roi_box_side)[0]
        window = roi.crop_window(box, framing.roi_margin, min_side=1)
        x = roi.crop_input(rgb, window, self.size, geometry.PIXEL_MEAN, geometry.PIXEL_STD)
        x0, y0, side = window
        local = ((box - np.array([x0, y0, x0, y0], np.float32)) * (self.size / side)).astype(np.float32)[None]
        dense = roi.dense_box_prompt(local, self.size) if framing.dense_box else None
        return View(np.ascontiguousarray(x, np.float32), input_key(x), local, dense)
