"""What the teacher and the student both see: a fixed set of encoder inputs ("views") per image.

View 0 of an image is the input the model gets at inference; views 1.. are augmented copies
(flips, small rotations, tone, noise, blur: the same `Augmenter` finetune uses). Each view is a
pure function of the image's pixels, the seed and the view index, so the student, trained later or
after a restart, sees exactly the input the teacher's cached embedding was computed from; the
cache key is the hash of that input itself, so a changed image, augmentation, input size or
framing can never be served a stale embedding.

Framing follows the teacher (`edgesam_runtime.roi`): whole-image models see the padded, resized image; ROI
models see a square crop around a box, resized to the input size, exactly as the predictor and the
runtime cut it at inference. Distillation needs no masks, so ROI views are cut around boxes of
random position and size. Each view also carries box prompts in its input frame (with the dense
box prompt of models that take one), for the optional stage on the teacher's masks.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from edgesam_runtime import geometry, roi
from edgesam.data import AugmentConfig, Augmenter, sample_box


@dataclass(frozen=True)
class View:
    x: np.ndarray  # (1, 3, S, S) float32, normalized: the encoder input of teacher and student
    key: str  # sha256 of x: the teacher cache key
    coords: np.ndarray  # (K, N, 2) box-prompt points in the input frame
    labels: np.ndarray  # (K, N) SAM point labels
    mask_input: np.ndarray | None = None  # (K, 1, S/4, S/4) dense box prompt of models that take one
    crop_box: np.ndarray | None = None  # ROI framing: the (augmented) frame's box the crop is cut around


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
    lo, hi = np.log(max(side[0] * short, 1.0)), np.log(max(side[1] * short, 1.0))
    out = np.zeros((count, 4), np.float32)
    for k in range(count):
        bw, bh = np.minimum(np.exp(rng.uniform(lo, hi, size=2)), [w - 1, h - 1]).clip(min=1.0)
        x0, y0 = rng.uniform(0, max(w - 1 - bw, 0)), rng.uniform(0, max(h - 1 - bh, 0))
        out[k] = (x0, y0, x0 + bw, y0 + bh)
    return out


class ViewMaker:
    """Makes view `index` of an image for a model of `framing`; see the module docstring."""

    def __init__(self, image_size: int, framing: roi.InputFraming, augment: AugmentConfig, seed: int,
                 box_side: tuple[float, float] = (0.02, 0.5), prompts: int = 4):
        self.size, self.framing, self.seed = image_size, framing, seed
        self.augmenter = Augmenter(augment, seed)
        self.box_side, self.prompts = tuple(box_side), prompts

    def view(self, image: np.ndarray, index: int, masks: np.ndarray | None = None) -> View:
        """View `index` of `image`; `masks` (K, H, W), where labels exist, put whole-image box prompts on objects.

        The pixels of a view do not depend on `masks` (the augmenter draws the same numbers either way).
        """
        rng = np.random.default_rng([self.seed, image_tag(image), index])
        masks = np.zeros((0,) + image.shape[:2], bool) if masks is None else np.asarray(masks, bool)
        if index > 0:
            image, masks = self.augmenter(image, masks, rng)
        if self.framing.roi:
            return self._roi_view(image, rng)
        x, hw, _ = geometry.preprocess(image, self.size)
        boxes = [sample_box(m, rng, 0.1) for m in masks[: self.prompts]]
        boxes = np.concatenate([np.asarray(boxes, np.float32).reshape(-1, 4),
                                random_boxes(rng, hw, self.prompts - len(boxes), self.box_side)])
        prompts = roi.image_inputs(None, None, boxes, self.framing, hw, self.size)
        return View(x, input_key(x), prompts.coords, prompts.labels, prompts.mask_input)

    def _roi_view(self, image: np.ndarray, rng: np.random.Generator) -> View:
        """A square crop around one random box, resized to the input size (what an ROI model sees)."""
        rgb = geometry.to_rgb_uint8(image)
        box = random_boxes(rng, rgb.shape[:2], 1, self.box_side)
        inputs = roi.roi_inputs(rgb, None, None, box, self.framing, self.size)
        x = np.ascontiguousarray(inputs.images, np.float32)
        return View(x, input_key(x), inputs.coords, inputs.labels, inputs.mask_input, box[0])
