"""Image geometry shared by the torch predictor and the torch-free runtime.

This is the single source of truth for SAM's pre- and post-processing (numpy + Pillow, no torch):
resize the longest side, normalize, pad to a square, map prompt coordinates into the resized frame,
and upscale low-resolution logits back to the original image. Keeping one copy is what stops the
exported path from drifting away from PyTorch.

Conventions follow segment-anything exactly:
- `ResizeLongestSide`: new side = int(side * target / longest + 0.5); the image is resized with PIL's
  bilinear filter on uint8 RGB (that is what torchvision's `resize` does on a PIL image).
- `Sam.preprocess`: (x - mean) / std per channel, then zero padding at the bottom and right.
- `Sam.postprocess_masks`: bilinear (align_corners=False) to the padded input size, crop the valid
  region, bilinear to the original size.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
MASK_THRESHOLD = 0.0
# Above this share of boundary-band pixels in the region that may be positive, upscale_masks
# computes the region with one block product instead of per-pixel gathers (measured crossover).
DENSE_BAND_FRACTION = 0.2


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
    if min(new_h, new_w) < 1:  # PIL would fail on a zero side, with a message naming nothing
        raise GeometryError(
            f"image: a {h}x{w} (HxW) frame has a side of 0 px at the model's {target} px input; its short side "
            f"must be at least {math.ceil(max(h, w) / (2 * target))} px (crop the frame, or use a ROI-framed model)")
    return np.asarray(Image.fromarray(image_rgb).resize((new_w, new_h), Image.BILINEAR))


def normalize_into(out: np.ndarray, image_rgb: np.ndarray, mean: Sequence[float] = PIXEL_MEAN,
                   std: Sequence[float] = PIXEL_STD) -> None:
    """`out` (..., 3, h, w) float32 <- (image - mean) / std of (..., h, w, 3) images, per channel.

    Two ufuncs writing into `out` (no float copy of the image, no transposed temporary): the same
    float32 operations as `(image.astype(float32) - mean) / std`, bit for bit, in a fraction of the time."""
    planar = np.moveaxis(image_rgb, -1, -3)
    np.subtract(planar, np.asarray(mean, dtype=np.float32)[:, None, None], out=out, dtype=np.float32)
    np.divide(out, np.asarray(std, dtype=np.float32)[:, None, None], out=out)


def normalize_and_pad(
    image_rgb: np.ndarray,
    target: int,
    mean: Sequence[float] = PIXEL_MEAN,
    std: Sequence[float] = PIXEL_STD,
) -> np.ndarray:
    """Normalize an HxWx3 image and zero-pad it to a 1x3x`target`x`target` float32 tensor."""
    h, w = image_rgb.shape[:2]
    out = np.zeros((1, 3, target, target), dtype=np.float32)
    normalize_into(out[0, :, :h, :w], image_rgb, mean, std)
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


def grid_targets(masks: np.ndarray, target: int, grid: int) -> np.ndarray:
    """(K, H, W) bool masks -> (K, 1, grid, grid) float32 coverage in the model's frame.

    The same resize-longest-side (bilinear) + bottom/right padding as the image, then each grid cell
    holds the share of it the mask covers: the ground truth a mask drawn on that grid is trained
    against (the decoder's grid is target / 4; a refiner's is finer), and what `edgesam.eval.ceiling`
    draws to bound the IoU any model can reach on it. Thin defects keep a fractional value instead
    of vanishing.
    """
    masks = np.asarray(masks, dtype=bool)
    if target % grid:
        raise GeometryError(f"grid: expected a divisor of the input size {target}, got {grid}")
    k, h, w = masks.shape
    rh, rw = resized_shape(h, w, target)
    cell = target // grid
    out = np.zeros((k, 1, grid, grid), dtype=np.float32)
    for i, m in enumerate(masks):
        full = np.zeros((target, target), dtype=np.float32)
        img = Image.fromarray(m.astype(np.uint8) * 255).resize((rw, rh), Image.BILINEAR)
        full[:rh, :rw] = np.asarray(img, dtype=np.float32) / 255.0
        out[i, 0] = full.reshape(grid, cell, grid, cell).mean(axis=(1, 3))
    return out


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


@lru_cache(maxsize=64)
def _upscale_support(out_size: int, valid: int, target: int, low: int):
    """Banded form of `_upscale_matrix`: per output index the first supporting low-res index `start`,
    the band weights `w` (out, k) with `w[i, d]` = weight of low index `start[i] + d` (zero past the
    support), and the runs of consecutive outputs sharing one support (`first`, `counts`, `group`)."""
    mat = _upscale_matrix(out_size, valid, target, low)
    nz = mat != 0
    if not nz.any(axis=1).all() or (mat < 0).any():
        raise AssertionError("upscale matrix: every row must hold non-negative weights")
    r0 = nz.argmax(axis=1)
    r1 = low - 1 - nz[:, ::-1].argmax(axis=1)
    if (np.diff(r0) < 0).any() or (np.diff(r1) < 0).any():
        raise AssertionError("upscale matrix: supports must move monotonically")
    k = int((r1 - r0).max()) + 1
    start = np.minimum(r0, low - k)  # keep start + d inside [0, low) for every d < k
    idx = start[:, None] + np.arange(k)
    w = np.take_along_axis(mat, idx, axis=1)
    w[(idx < r0[:, None]) | (idx > r1[:, None])] = 0.0
    change = np.flatnonzero((np.diff(r0) != 0) | (np.diff(r1) != 0)) + 1
    first = np.concatenate([[0], change])
    counts = np.diff(np.concatenate([first, [out_size]]))
    group = np.repeat(np.arange(first.size), counts)
    wmin = float(mat[nz].min())
    return start, np.ascontiguousarray(w), k, r0[first], r1[first], first, counts, group, wmin


def _support_all(flags: np.ndarray, g_r0: np.ndarray, g_r1: np.ndarray, k: int, axis: int) -> np.ndarray:
    """AND of `flags` over each group's contiguous support [r0, r1] along `axis` (width <= k)."""
    acc = np.take(flags, g_r0, axis=axis)
    for d in range(1, k):
        acc &= np.take(flags, np.minimum(g_r0 + d, g_r1), axis=axis)
    return acc


def upscale_masks(
    low_res: np.ndarray, original_hw: tuple[int, int], target: int, threshold: float = MASK_THRESHOLD
) -> np.ndarray:
    """(..., h, w) low-res logits -> (..., H, W) bool masks equal to `upscale_logits(...) > threshold`.

    Each mask is the block `upscale_mask_blocks` computes for it, pasted into an all-False frame.
    """
    low_res = np.asarray(low_res, dtype=np.float32)
    lead = low_res.shape[:-2]
    out_h, out_w = int(original_hw[0]), int(original_hw[1])
    flat = low_res.reshape((-1,) + low_res.shape[-2:])
    out = np.zeros((flat.shape[0], out_h, out_w), dtype=bool)
    if out.size == 0:
        return out.reshape(lead + (out_h, out_w))
    for i, block in enumerate(upscale_mask_blocks(flat, (out_h, out_w), target, threshold)):
        if block is not None:
            (y0, x0), values = block
            out[i, y0:y0 + values.shape[0], x0:x0 + values.shape[1]] = values
    return out.reshape(lead + (out_h, out_w))


def upscale_mask_blocks(low_res: np.ndarray, original_hw: tuple[int, int], target: int,
                        threshold: float = MASK_THRESHOLD, region: tuple[int, int, int, int] | None = None):
    """Yields, for each (h, w) map of (N, h, w) low-res logits, ((y0, x0), bool block) holding every pixel of the
    (H, W) mask that can be True (all others are False), or None when none can. Lets a caller keep
    only the part of a large frame a mask can occupy (`Segmenter.segment(..., crop=True)`).
    `region` (y0, y1, x0, x1) of the output limits the work to the pixels a caller keeps (a ROI window
    reaching past the frame): the block then holds every pixel of the region that can be True, and
    may reach a little past it (whole runs of rows and columns sharing one support).

    Every output pixel is a convex combination (non-negative weights) of the low-res cells in its
    support: at most k rows x k columns, contiguous, k <= 3 for SAM's two bilinear resizes. Where all
    of those cells are surely above the threshold the pixel is True, where none is it is False; those
    two maps are computed per run of output rows/columns sharing one support (a few hundred runs per
    axis), then expanded. Only the pixels of the boundary band, whose support mixes both, get their
    value computed, in the same two stages (rows, then columns) as `upscale_logits`.
    """
    flat = np.asarray(low_res, dtype=np.float32)
    lh, lw = flat.shape[-2:]
    out_h, out_w = int(original_hw[0]), int(original_hw[1])
    if out_h < 1 or out_w < 1:
        yield from [None] * len(flat)
        return
    valid_h, valid_w = resized_shape(out_h, out_w, target)
    ys, wy, ky, gy_r0, gy_r1, gy_first, gy_counts, gy_of, wmin_y = _upscale_support(out_h, valid_h, target, lh)
    xs, wx, kx, gx_r0, gx_r1, gx_first, gx_counts, gx_of, wmin_x = _upscale_support(out_w, valid_w, target, lw)
    # A cell is "surely above" when no float32 rounding of a convex combination of such cells can
    # reach the threshold: strictly positive and large enough that no product underflows for t = 0,
    # a relative margin otherwise. "Surely not above" likewise.
    thr = np.float32(threshold)
    margin = abs(float(thr)) * 2.0**-12
    floor = float(np.finfo(np.float32).tiny) / (wmin_y * wmin_x) * 4.0
    hi = np.float32(float(thr) + max(margin, floor if thr == 0 else 0.0))
    lo = np.float32(float(thr) - margin)
    ry0, ry1, rx0, rx1 = (0, out_h, 0, out_w) if region is None else (int(v) for v in region)
    runs_y = (int(np.searchsorted(gy_first + gy_counts, ry0, "right")), int(np.searchsorted(gy_first, ry1, "left")))
    runs_x = (int(np.searchsorted(gx_first + gx_counts, rx0, "right")), int(np.searchsorted(gx_first, rx1, "left")))
    for logits in flat:
        above = logits > hi
        if not above.any() and not (logits > lo).any():
            yield None  # nothing can exceed the threshold
            continue
        below = logits <= lo
        # Only runs whose support meets the bounding box of the cells that may be above can be True.
        may_r, may_c = np.flatnonzero(~below.all(axis=1)), np.flatnonzero(~below.all(axis=0))
        ga = max(int(np.searchsorted(gy_r1, may_r[0], "left")), runs_y[0])
        gb = min(int(np.searchsorted(gy_r0, may_r[-1], "right")), runs_y[1])
        xa = max(int(np.searchsorted(gx_r1, may_c[0], "left")), runs_x[0])
        xb = min(int(np.searchsorted(gx_r0, may_c[-1], "right")), runs_x[1])
        if gb <= ga or xb <= xa:
            yield None  # those cells lie in the padding, outside every output pixel's support
            continue
        sy, sx = slice(ga, gb), slice(xa, xb)
        all_above = _support_all(_support_all(above, gy_r0[sy], gy_r1[sy], ky, 0), gx_r0[sx], gx_r1[sx], kx, 1)
        none_above = _support_all(_support_all(below, gy_r0[sy], gy_r1[sy], ky, 0), gx_r0[sx], gx_r1[sx], kx, 1)
        y0, y1 = int(gy_first[ga]), int(gy_first[gb - 1] + gy_counts[gb - 1])
        x0, x1 = int(gx_first[xa]), int(gx_first[xb - 1] + gx_counts[xb - 1])
        cols = all_above[:, gx_of[x0:x1] - xa]
        block = np.repeat(cols, gy_counts[sy], axis=0)
        band_gy, band_gx = np.nonzero(~(all_above | none_above))
        band_gy += ga
        band_gx += xa
        if band_gy.size == 0:
            yield (y0, x0), block
            continue
        # Pixels of the band: every (row, col) of each band cell's run of rows x run of columns.
        ny, nx = gy_counts[band_gy], gx_counts[band_gx]
        n = ny * nx
        if int(n.sum()) > DENSE_BAND_FRACTION * (y1 - y0) * (x1 - x0):
            # A ragged mask (boundary nearly everywhere): one block product beats per-pixel gathers.
            wy_full = _upscale_matrix(out_h, valid_h, target, lh)
            wx_full = _upscale_matrix(out_w, valid_w, target, lw)
            block[...] = (wy_full[y0:y1] @ logits @ wx_full[x0:x1].T) > thr
            yield (y0, x0), block
            continue
        cell = np.repeat(np.arange(n.size), n)
        local = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        nxc = nx[cell]
        py = gy_first[band_gy][cell] + local // nxc
        px = gx_first[band_gx][cell] + local % nxc
        # Stage 1 (rows) for the band's rows, over their full width: tmp[r] = sum_d wy[r, d] * L[ys[r] + d].
        rows = np.flatnonzero(np.bincount(py, minlength=out_h))
        tmp = wy[rows, 0:1] * logits[ys[rows]]
        for d in range(1, ky):
            tmp = tmp + wy[rows, d : d + 1] * logits[ys[rows] + d]
        slot = np.empty(out_h, dtype=np.int64)
        slot[rows] = np.arange(rows.size)
        # Stage 2 (columns) per band pixel.
        flat_tmp = tmp.reshape(-1)
        base = slot[py] * lw + xs[px]
        val = wx[px, 0] * flat_tmp[base]
        for d in range(1, kx):
            val = val + wx[px, d] * flat_tmp[base + d]
        block[py - y0, px - x0] = val > thr
        yield (y0, x0), block
