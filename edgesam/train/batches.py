"""Turn a dataset `Sample` into model inputs: the image tensor, prompts and low-res targets.

Geometry goes through `edgesam_runtime.geometry` (the numpy code the predictor and the runtime use), so a
model trained here sees exactly the inputs it will see at inference. One prompt type per image
(all boxes or all points, drawn with `box_prob`) keeps every image's prompts one (K, N) array, so a
single decoder call serves all its objects with no padding tokens that inference would not have.

In ROI framing (`edgesam_runtime.roi`) every object gets its own crop around its jittered box, cut from the
(augmented) image, and its target is cut from the same window: the model trains on exactly the
crops the predictor and the runtime will cut at inference.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from edgesam_runtime import geometry, roi
from edgesam.data import Sample, sample_box, sample_points


@dataclass
class PromptConfig:
    """How training prompts are drawn from ground truth each step."""

    box_prob: float = 0.5  # probability that an image's objects are prompted by boxes (else points)
    box_jitter: float = 0.1  # box side noise, fraction of the side
    n_pos: int = 1  # positive points per object for point prompts
    n_neg: int = 0  # negative points per object for point prompts

    def __post_init__(self):
        if not 0.0 <= self.box_prob <= 1.0:
            raise ValueError(f"box_prob: expected a probability in [0, 1], got {self.box_prob}")
        if self.n_pos < 0 or self.n_neg < 0 or (self.box_prob < 1.0 and self.n_pos + self.n_neg == 0):
            raise ValueError(f"points: need n_pos + n_neg >= 1 (both >= 0), got {self.n_pos}, {self.n_neg}")


@dataclass
class TrainItem:
    """One image's training inputs. K objects, N prompt points each (in the model's input frame)."""

    image: torch.Tensor  # (1, 3, S, S) normalized, padded; ROI framing: (K, 3, S, S), a crop per object
    coords: torch.Tensor  # (K, N, 2) float32
    labels: torch.Tensor  # (K, N) float32, SAM labels (1, 0, 2/3, -1)
    targets: torch.Tensor  # (K, 1, S/4, S/4) float in [0, 1]
    multimask: bool  # single-point prompts: ambiguous, trained best-of-3 on outputs 1..3
    stem: str = ""
    class_name: str = ""
    mask_input: torch.Tensor | None = None  # (K, 1, S/4, S/4) dense box prompt, when the model takes one
    fine_targets: torch.Tensor | None = None  # (K, 1, G, G) targets on a refiner's grid, when the model has one

    @property
    def num_objects(self) -> int:
        return int(self.coords.shape[0])


@dataclass
class TrainBatch:
    images: torch.Tensor  # (B, 3, S, S)
    items: list[TrainItem] = field(default_factory=list)  # prompts and targets per image

    def to(self, device) -> "TrainBatch":
        items = [TrainItem(i.image, i.coords.to(device), i.labels.to(device), i.targets.to(device), i.multimask,
                           i.stem, i.class_name, _to(i.mask_input, device), _to(i.fine_targets, device))
                 for i in self.items]
        return TrainBatch(self.images.to(device, non_blocking=True), items)


def _to(tensor: torch.Tensor | None, device):
    return None if tensor is None else tensor.to(device)


def low_res_targets(masks: np.ndarray, image_size: int) -> np.ndarray:
    """(K, H, W) bool masks -> (K, 1, S/4, S/4) coverage targets on the decoder's grid."""
    return geometry.grid_targets(masks, image_size, image_size // 4)


def draw_prompts(masks: np.ndarray, rng: np.random.Generator, cfg: PromptConfig):
    """Prompts for every object of one image in original pixels: (boxes|None, points|None, labels|None)."""
    if rng.random() < cfg.box_prob:
        return np.stack([sample_box(m, rng, cfg.box_jitter) for m in masks]), None, None
    pts = [sample_points(m, rng, cfg.n_pos, cfg.n_neg) for m in masks]
    return None, np.stack([p[0] for p in pts]), np.stack([p[1] for p in pts]).astype(np.float32)


def prepare_sample(sample: Sample, image_size: int, rng: np.random.Generator, prompt_cfg: PromptConfig,
                   max_objects: int, augmenter=None, framing: roi.InputFraming = roi.WHOLE_IMAGE,
                   fine_grid: int | None = None) -> TrainItem | None:
    """Augment (optional), pick up to `max_objects` objects, draw prompts; None when no object is left.

    `fine_grid`: the side of a refiner's mask grid (targets on it are added), None without a refiner.
    """
    image, masks = sample.image, sample.masks
    if augmenter is not None and masks.shape[0]:
        image, masks = augmenter(image, masks, rng)
    masks = masks[masks.reshape(masks.shape[0], -1).any(axis=1)] if masks.shape[0] else masks
    if masks.shape[0] == 0:
        return None
    if masks.shape[0] > max_objects:
        masks = masks[np.sort(rng.choice(masks.shape[0], max_objects, replace=False))]
    if framing.roi:
        return _roi_item(sample, image, masks, image_size, rng, prompt_cfg, framing, fine_grid)
    x, original_hw, _ = geometry.preprocess(image, image_size)
    boxes, points, labels = draw_prompts(masks, rng, prompt_cfg)
    inputs = roi.image_inputs(points, labels, boxes, framing, original_hw, image_size)
    return TrainItem(
        image=torch.from_numpy(x),
        coords=torch.from_numpy(inputs.coords),
        labels=torch.from_numpy(inputs.labels),
        targets=torch.from_numpy(low_res_targets(masks, image_size)),
        multimask=boxes is None and prompt_cfg.n_pos + prompt_cfg.n_neg == 1,
        stem=sample.stem,
        class_name=sample.class_name,
        mask_input=None if inputs.mask_input is None else torch.from_numpy(inputs.mask_input),
        fine_targets=_fine(masks, image_size, fine_grid),
    )


def _fine(masks: np.ndarray, image_size: int, grid: int | None) -> torch.Tensor | None:
    return None if grid is None else torch.from_numpy(geometry.grid_targets(masks, image_size, grid))


def _roi_item(sample, image, masks, image_size, rng, prompt_cfg, framing, fine_grid=None) -> TrainItem:
    """ROI framing: a crop per object around its jittered box; the target cut from the same window."""
    boxes = np.stack([sample_box(m, rng, prompt_cfg.box_jitter) for m in masks])
    inputs = roi.roi_inputs(geometry.to_rgb_uint8(image), None, None, boxes, framing, image_size)
    crop_masks = [roi.crop_mask(m, w)[None] for m, w in zip(masks, inputs.windows)]
    targets = np.concatenate([low_res_targets(c, image_size) for c in crop_masks])
    fine = None if fine_grid is None else torch.from_numpy(
        np.concatenate([geometry.grid_targets(c, image_size, fine_grid) for c in crop_masks]))
    return TrainItem(
        image=torch.from_numpy(inputs.images),
        coords=torch.from_numpy(inputs.coords),
        labels=torch.from_numpy(inputs.labels),
        targets=torch.from_numpy(targets),
        multimask=False,
        stem=sample.stem,
        class_name=sample.class_name,
        mask_input=None if inputs.mask_input is None else torch.from_numpy(inputs.mask_input),
        fine_targets=fine,
    )


def collate(items: list[TrainItem | None]) -> TrainBatch | None:
    """Stack images; keep prompts per image (each image has its own object count)."""
    items = [i for i in items if i is not None]
    if not items:
        return None
    return TrainBatch(torch.cat([i.image for i in items]), items)
