"""Image geometry shared by the torch predictor and the torch-free runtime.

This is the single source of truth for SAM's pre- and post-processing (numpy + Pillow, no torch):
resize the longest side, normalize, pad to a square, map prompt coordinates into the resized frame,
and upscale low-resolution logits back to the original image. Keeping one copy is what stops the
exported path from drifting away from PyTorch (DESIGN.md, lesson 3).

Conventions follow segment-anything exactly:
- `ResizeLongestSide`: new side = int(side * target / longest + 0.5); the image is resized with PIL's
  bilinear filter on uint8 RGB (that is what torchvision's `resize` does on a PIL image).
- `Sam.preprocess`: (x - mean) / std per channel, then zero padding at the bottom and right.
- `Sam.postprocess_masks`: bilinear (align_corners=False) to the padded input size, crop the valid
  region, bilinear to the original size.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
MASK_THRESHOLD = 0.0


class GeometryError(ValueError):
    """An image or prompt array that does not have the shape or dtype the geometry expects."""


def resized_shape(height: int, width: int, target: int) -> tuple[int, int]:
    """Shape after resizing so the longest side equals `target` (segment-anything's rounding)."""
    scale = target * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def to_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Any line image (HxW, HxWx1, HxWx3, HxWx4; uint8 or uint16) as HxWx3 uint8.

    16-bit images are scaled by 255/65535 (full range); alpha is dropped; grayscale is repeated.
    """
    if not isinstance(image, np.ndarray):
        raise GeometryError(f"image: expected a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise GeometryError(f"image: expected HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}")
    if min(image.shape[:2]) < 1:
        raise GeometryError(f"image: empty image of shape {image.shape}")
    image = image[:, :, :3]
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    if image.dtype == np.uint16:
        return (image.astype(np.float32) * (255.0 / 65535.0) + 0.5).astype(np.uint8)
    raise GeometryError(f"image: expected dtype uint8 or uint16, got {image.dtype}")


def resize_longest_side(image_rgb: np.ndarray, target: int) -> np.ndarray:
    """Resize an HxWx3 uint8 image so its longest side is `target` (PIL bilinear, as SAM does)."""
    h, w = image_rgb.shape[:2]
    new_h, new_w = resized_shape(h, w, target)
    return np.asarray(Image.fromarray(image_rgb).resize((new_w, new_h), Image.BILINEAR))


def normalize_and_pad(
    image_rgb: np.ndarray,
    target: int,
    mean: Sequence[float] = PIXEL_MEAN,
    std: Sequence[float] = PIXEL_STD,
) -> np.ndarray:
    """Normalize an HxWx3 image and zero-pad it to a 1x3x`target`x`target` float32 tensor."""
    h, w = image_rgb.shape[:2]
    out = np.zeros((1, 3, target, target), dtype=np.float32)
    chw = image_rgb.astype(np.float32).transpose(2, 0, 1)
    mean_a = np.asarray(mean, dtype=np.float32)[:, None, None]
    std_a = np.asarray(std, dtype=np.float32)[:, None, None]
    out[0, :, :h, :w] = (chw - mean_a) / std_a
    return out


def preprocess(
    image: np.ndarray,
    target: int,
    mean: Sequence[float] = PIXEL_MEAN,
    std: Sequence[float] = PIXEL_STD,
) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    """Any image -> (encoder input 1x3xTxT float32, original (h, w), resized (h, w))."""
    rgb = to_rgb_uint8(image)
    resized = resize_longest_side(rgb, target)
    return normalize_and_pad(resized, target, mean, std), rgb.shape[:2], resized.shape[:2]


def transform_coords(coords: np.ndarray, original_hw: tuple[int, int], target: int) -> np.ndarray:
    """Map (..., 2) x/y coordinates from the original image into the resized frame."""
    coords = np.asarray(coords, dtype=np.float32)
    if coords.shape[-1:] != (2,):
        raise GeometryError(f"coords: expected shape (..., 2), got {coords.shape}")
    old_h, old_w = original_hw
    new_h, new_w = resized_shape(old_h, old_w, target)
    out = coords.copy()
    out[..., 0] = out[..., 0] * (new_w / old_w)
    out[..., 1] = out[..., 1] * (new_h / old_h)
    return out


def transform_boxes(boxes: np.ndarray, original_hw: tuple[int, int], target: int) -> np.ndarray:
    """Map (..., 4) x0,y0,x1,y1 boxes into the resized frame; returns (..., 4)."""
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.shape[-1:] != (4,):
        raise GeometryError(f"boxes: expected shape (..., 4), got {boxes.shape}")
    corners = transform_coords(boxes.reshape(-1, 2, 2), original_hw, target)
    return corners.reshape(boxes.shape)


def build_prompt_arrays(
    point_coords: np.ndarray | None,
    point_labels: np.ndarray | None,
    boxes: np.ndarray | None,
    original_hw: tuple[int, int],
    target: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Prompts as the decoder's (B, N, 2) coords and (B, N) labels, in the resized frame.

    Encodes SAM's prompt encoder exactly: points first, then each box as two corner points with
    labels 2 and 3; without a box a padding point (0, 0) with label -1 is appended, as
    `PromptEncoder._embed_points(pad=True)` does. B is the number of boxes (or 1, or the batch of
    point sets when `point_coords` is (B, N, 2)).
    """
    coords, labels = _points_batch(point_coords, point_labels)
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        corners = transform_boxes(boxes, original_hw, target).reshape(-1, 2, 2)
        corner_labels = np.tile(np.array([[2, 3]], dtype=np.float32), (len(boxes), 1))
        if coords is None:
            return corners, corner_labels
        coords, labels = _broadcast_batch(coords, labels, len(boxes))
        coords = transform_coords(coords, original_hw, target)
        return (np.concatenate([coords, corners], axis=1), np.concatenate([labels, corner_labels], axis=1))
    if coords is None:
        raise GeometryError("prompts: give points, boxes or both")
    coords = transform_coords(coords, original_hw, target)
    pad_c = np.zeros((coords.shape[0], 1, 2), dtype=np.float32)
    pad_l = -np.ones((coords.shape[0], 1), dtype=np.float32)
    return np.concatenate([coords, pad_c], axis=1), np.concatenate([labels, pad_l], axis=1)


def _points_batch(coords, labels) -> tuple[np.ndarray | None, np.ndarray | None]:
    if coords is None:
        return None, None
    coords = np.asarray(coords, dtype=np.float32)
    if labels is None:
        raise GeometryError("point_labels: required with point_coords")
    labels = np.asarray(labels, dtype=np.float32)
    if coords.ndim == 2:
        coords, labels = coords[None], labels.reshape(1, -1)
    if coords.ndim != 3 or coords.shape[-1] != 2:
        raise GeometryError(f"point_coords: expected (N, 2) or (B, N, 2), got {coords.shape}")
    if labels.shape != coords.shape[:2]:
        raise GeometryError(f"point_labels: expected shape {coords.shape[:2]}, got {labels.shape}")
    return coords, labels


def _broadcast_batch(coords, labels, batch):
    if coords.shape[0] == batch:
        return coords, labels
    if coords.shape[0] != 1:
        raise GeometryError(f"point_coords: batch {coords.shape[0]} does not match {batch} boxes")
    return np.repeat(coords, batch, axis=0), np.repeat(labels, batch, axis=0)


@lru_cache(maxsize=64)
def _bilinear_matrix(out_size: int, in_size: int) -> np.ndarray:
    """(out, in) weights of 1-D bilinear resampling with align_corners=False (torch semantics)."""
    scale = in_size / out_size
    src = (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5
    src = np.maximum(src, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = src - lo
    mat = np.zeros((out_size, in_size), dtype=np.float64)
    rows = np.arange(out_size)
    np.add.at(mat, (rows, lo), 1.0 - frac)
    np.add.at(mat, (rows, hi), frac)
    return mat


@lru_cache(maxsize=64)
def _upscale_matrix(out_size: int, valid: int, target: int, low: int) -> np.ndarray:
    """Composite (out_size, low) weights: low-res -> padded target, crop `valid`, -> out_size."""
    to_target = _bilinear_matrix(target, low)[:valid]
    return (_bilinear_matrix(out_size, valid) @ to_target).astype(np.float32)


def upscale_logits(
    low_res: np.ndarray, original_hw: tuple[int, int], target: int
) -> np.ndarray:
    """(..., h, w) low-res logits -> (..., H, W) logits at the original size, as `postprocess_masks`."""
    low_res = np.asarray(low_res, dtype=np.float32)
    lh, lw = low_res.shape[-2:]
    valid_h, valid_w = resized_shape(*original_hw, target)
    wy = _upscale_matrix(original_hw[0], valid_h, target, lh)
    wx = _upscale_matrix(original_hw[1], valid_w, target, lw)
    return np.matmul(np.matmul(wy, low_res), wx.T)


def upscale_masks(
    low_res: np.ndarray, original_hw: tuple[int, int], target: int, threshold: float = MASK_THRESHOLD
) -> np.ndarray:
    """(..., h, w) low-res logits -> (..., H, W) bool masks equal to `upscale_logits(...) > threshold`.

    An output pixel is a convex combination of the low-res cells in its support, so it can only
    exceed the threshold where some supporting row and column holds a cell above it. Only those
    output rows and columns are computed: for small defects on large images this is most of the
    post-processing time saved, with bit-identical results.
    """
    low_res = np.asarray(low_res, dtype=np.float32)
    lead = low_res.shape[:-2]
    flat = low_res.reshape((-1,) + low_res.shape[-2:])
    out = np.zeros((flat.shape[0],) + tuple(original_hw), dtype=bool)
    valid_h, valid_w = resized_shape(*original_hw, target)
    wy = _upscale_matrix(original_hw[0], valid_h, target, flat.shape[1])
    wx = _upscale_matrix(original_hw[1], valid_w, target, flat.shape[2])
    for i, logits in enumerate(flat):
        above = logits > threshold
        rows = np.flatnonzero((wy[:, above.any(axis=1)] != 0).any(axis=1))
        cols = np.flatnonzero((wx[:, above.any(axis=0)] != 0).any(axis=1))
        if rows.size and cols.size:
            block = wy[rows] @ logits @ wx[cols].T
            out[i][np.ix_(rows, cols)] = block > threshold
    return out.reshape(lead + tuple(original_hw))
