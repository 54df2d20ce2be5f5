"""Mask quality figures (numpy only: the runtime-side bench and the trainer's eval share them).

Two empty masks agree on nothing measurable: every overlap figure returns NaN (undefined) for that
pair instead of a perfect score, so that a model which outputs nothing can never raise a mean.
Callers count such pairs (`edgesam.eval.agreement`) and `summarize` leaves them out of the figures.
"""
from __future__ import annotations

import numpy as np

UNDEFINED = float("nan")  # the figure of an empty/empty pair


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two boolean HxW masks; NaN (undefined) when both are empty."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"mask_iou: shapes differ: {pred.shape} vs {gt.shape}")
    union = np.logical_or(pred, gt).sum()
    return UNDEFINED if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice coefficient of two boolean masks; NaN (undefined) when both are empty."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"dice: shapes differ: {pred.shape} vs {gt.shape}")
    total = pred.sum() + gt.sum()
    return UNDEFINED if total == 0 else float(2.0 * np.logical_and(pred, gt).sum() / total)


def batch_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(K,) IoU of K mask pairs given as (K, H, W) arrays; NaN where both masks of a pair are empty."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"batch_iou: shapes differ: {pred.shape} vs {gt.shape}")
    flat_p, flat_g = pred.reshape(len(pred), -1), gt.reshape(len(gt), -1)
    inter = np.logical_and(flat_p, flat_g).sum(1)
    union = np.logical_or(flat_p, flat_g).sum(1)
    return np.where(union == 0, UNDEFINED, inter / np.maximum(union, 1)).astype(np.float64)


def is_empty(masks: np.ndarray) -> np.ndarray:
    """(K,) True where a (K, H, W) mask has no foreground pixel."""
    masks = np.asarray(masks, bool)
    return ~masks.reshape(len(masks), -1).any(axis=1)


def summarize(values) -> dict:
    """Mean, 5th percentile, median and minimum of the defined figures; `undefined` counts the NaNs left out.

    `n` is the number of figures the statistics are taken over; with none, every statistic is None.
    """
    arr = np.asarray(list(values), dtype=np.float64)
    defined = arr[~np.isnan(arr)]
    out = {"mean": None, "p5": None, "p50": None, "min": None, "n": int(defined.size),
           "undefined": int(arr.size - defined.size)}
    if defined.size:
        out.update(mean=float(defined.mean()), p5=float(np.percentile(defined, 5)), p50=float(np.median(defined)),
                   min=float(defined.min()))
    return out


# --- boundary figures (numpy only) -----------------------------------------------------------
def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """Boolean HxW boundary: foreground pixels with a 4-neighbour outside the mask (or the image)."""
    m = np.asarray(mask, bool)
    padded = np.pad(m, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & m
    return m & ~interior


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a disk of `radius` pixels (shifted ORs; radius is small)."""
    h, w = mask.shape
    out = mask.copy()
    padded = np.pad(mask, radius, constant_values=False)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx <= radius * radius and (dy or dx):
                out |= padded[radius + dy:radius + dy + h, radius + dx:radius + dx + w]
    return out


def boundary_fscore(pred: np.ndarray, gt: np.ndarray, tolerance: int = 2) -> float:
    """F-score of boundary pixels matched within `tolerance` px (Perazzi et al., DAVIS 'F').

    Both empty: NaN (undefined); one empty: 0.0.
    """
    pb, gb = mask_boundary(pred), mask_boundary(gt)
    if not pb.any() and not gb.any():
        return UNDEFINED
    if not pb.any() or not gb.any():
        return 0.0
    precision = (pb & _dilate(gb, tolerance)).sum() / pb.sum()
    recall = (gb & _dilate(pb, tolerance)).sum() / gb.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def _nearest_distances(src: np.ndarray, dst: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Distance from each (y, x) point in `src` to its nearest point in `dst` (chunked brute force)."""
    dst = dst.astype(np.float32)
    out = np.empty(len(src), dtype=np.float32)
    for i in range(0, len(src), chunk):
        part = src[i:i + chunk].astype(np.float32)
        d2 = (part[:, None, 0] - dst[None, :, 0]) ** 2 + (part[:, None, 1] - dst[None, :, 1]) ** 2
        out[i:i + chunk] = np.sqrt(d2.min(axis=1))
    return out


def hd95(pred: np.ndarray, gt: np.ndarray) -> float:
    """95th-percentile symmetric Hausdorff distance between the mask boundaries, in pixels.

    Both empty: NaN (undefined); exactly one empty: inf (no boundary to measure against).
    """
    pb, gb = np.argwhere(mask_boundary(pred)), np.argwhere(mask_boundary(gt))
    if len(pb) == 0 and len(gb) == 0:
        return UNDEFINED
    if len(pb) == 0 or len(gb) == 0:
        return float("inf")
    both = np.concatenate([_nearest_distances(pb, gb), _nearest_distances(gb, pb)])
    return float(np.percentile(both, 95))
