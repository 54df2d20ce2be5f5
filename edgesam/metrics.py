"""Mask quality figures (numpy only: the runtime-side bench and the trainer's eval share them)."""
from __future__ import annotations

import numpy as np


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """IoU of two boolean HxW masks; two empty masks agree perfectly (1.0)."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"mask_iou: shapes differ: {pred.shape} vs {gt.shape}")
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, gt).sum() / union)


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice coefficient of two boolean masks; two empty masks give 1.0."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"dice: shapes differ: {pred.shape} vs {gt.shape}")
    total = pred.sum() + gt.sum()
    return 1.0 if total == 0 else float(2.0 * np.logical_and(pred, gt).sum() / total)


def batch_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(K,) IoU of K mask pairs given as (K, H, W) arrays."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"batch_iou: shapes differ: {pred.shape} vs {gt.shape}")
    flat_p, flat_g = pred.reshape(len(pred), -1), gt.reshape(len(gt), -1)
    inter = np.logical_and(flat_p, flat_g).sum(1)
    union = np.logical_or(flat_p, flat_g).sum(1)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1)).astype(np.float64)


def summarize(values) -> dict:
    """Mean, 5th percentile, median and minimum of a list of figures (NaN-free)."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return {"mean": float("nan"), "p5": float("nan"), "p50": float("nan"), "min": float("nan"), "n": 0}
    return {"mean": float(arr.mean()), "p5": float(np.percentile(arr, 5)), "p50": float(np.median(arr)),
            "min": float(arr.min()), "n": int(arr.size)}
