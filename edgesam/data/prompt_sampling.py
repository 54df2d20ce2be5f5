"""Prompt sampling for prompted-segmentation training, following SAM's conventions.

Coordinates are in pixels of the original image, x = column, y = row:

* a point at pixel (row r, col c) is ``(x, y) = (c, r)`` -- the integer index of the pixel, whose
  centre SAM's prompt encoder reaches by adding 0.5 itself;
* a box is ``(x0, y0, x1, y1)`` with **inclusive** corners: x1 is the last foreground column and
  y1 the last foreground row, as in SAM's ``batched_mask_to_box`` and demo code, so a one-pixel
  object has a zero-size tight box.

Labels follow SAM: 1 positive point, 0 negative point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MIN_BOX_SIDE = 2.0
NEG_MARGIN = 0.5  # negatives come from the box grown by 50 % of its size on each side


@dataclass
class PromptSample:
    """One training prompt: an optional box and zero or more labelled points."""

    box: np.ndarray | None
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int32))


def _as_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D [H,W], got shape {mask.shape}")
    if not mask.any():
        raise ValueError("cannot sample a prompt from an empty mask")
    return mask


def tight_box(mask: np.ndarray) -> np.ndarray:
    """Inclusive tight box ``[x0, y0, x1, y1]`` float32 of a non-empty mask."""
    mask = _as_mask(mask)
    cols = np.flatnonzero(mask.any(axis=0))
    rows = np.flatnonzero(mask.any(axis=1))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.float32)


def _fix_min_side(lo: float, hi: float, min_side: float, limit: float) -> tuple[float, float]:
    """Grow [lo, hi] around its centre to ``min_side`` inside [0, limit]."""
    if hi - lo >= min_side:
        return lo, hi
    centre = (lo + hi) / 2.0
    lo, hi = centre - min_side / 2.0, centre + min_side / 2.0
    if lo < 0:
        lo, hi = 0.0, min_side
    if hi > limit:
        lo, hi = max(limit - min_side, 0.0), limit
    return lo, hi


def sample_box(mask: np.ndarray, rng: np.random.Generator, jitter: float = 0.1) -> np.ndarray:
    """Noisy box of ``mask``: each side moved by N(0, jitter * side length), float32 [4].

    The result is clipped to the image (0..W-1, 0..H-1) and kept at least 2 px wide and high (or the
    tight size when the object is smaller), so it never collapses or flips. ``jitter=0`` returns the
    exact tight box -- the box SAM users draw around a defect is rarely pixel-tight, hence the noise.
    """
    box = tight_box(mask)
    if jitter <= 0:
        return box
    h, w = mask.shape
    bw, bh = box[2] - box[0], box[3] - box[1]
    noise = rng.normal(0.0, jitter, size=4) * np.array([bw, bh, bw, bh])
    x0, y0, x1, y1 = (box + noise).tolist()
    x0, x1 = sorted((min(max(x0, 0.0), w - 1.0), min(max(x1, 0.0), w - 1.0)))
    y0, y1 = sorted((min(max(y0, 0.0), h - 1.0), min(max(y1, 0.0), h - 1.0)))
    x0, x1 = _fix_min_side(x0, x1, min(MIN_BOX_SIDE, float(bw)), w - 1.0)
    y0, y1 = _fix_min_side(y0, y1, min(MIN_BOX_SIDE, float(bh)), h - 1.0)
    return np.array([x0, y0, x1, y1], dtype=np.float32)


def _pick(rows: np.ndarray, cols: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` pixels (x, y) drawn uniformly; with replacement only when there are fewer than n."""
    idx = rng.choice(rows.size, size=n, replace=rows.size < n)
    return np.stack([cols[idx], rows[idx]], axis=1).astype(np.float32)


def _negative_region(mask: np.ndarray) -> np.ndarray:
    """Background inside the object's box grown by NEG_MARGIN of its size (>= 1 px) per side."""
    h, w = mask.shape
    x0, y0, x1, y1 = tight_box(mask)
    mx = max(1, int(np.ceil(NEG_MARGIN * (x1 - x0 + 1))))
    my = max(1, int(np.ceil(NEG_MARGIN * (y1 - y0 + 1))))
    region = np.zeros_like(mask)
    region[max(int(y0) - my, 0):min(int(y1) + my + 1, h), max(int(x0) - mx, 0):min(int(x1) + mx + 1, w)] = True
    return region & ~mask


def sample_points(mask: np.ndarray, rng: np.random.Generator, n_pos: int = 1, n_neg: int = 0):
    """Points and labels: (float32 [N,2] as (x, y), int32 [N]) with N = n_pos + n_neg.

    Positives are uniform over foreground pixels. Negatives are uniform over background pixels
    near the object (its box grown by 50 % per side), where a confusable surface is most likely;
    when that region has no background they come from the whole image's background.
    """
    mask = _as_mask(mask)
    if n_pos < 0 or n_neg < 0:
        raise ValueError(f"n_pos and n_neg must be >= 0, got {n_pos}, {n_neg}")
    rows, cols = np.nonzero(mask)
    parts = [_pick(rows, cols, n_pos, rng)] if n_pos else []
    if n_neg:
        region = _negative_region(mask)
        if not region.any():
            region = ~mask
        if not region.any():
            raise ValueError("cannot sample negative points: the mask covers the whole image")
        nr, nc = np.nonzero(region)
        parts.append(_pick(nr, nc, n_neg, rng))
    coords = np.concatenate(parts, axis=0) if parts else np.zeros((0, 2), np.float32)
    labels = np.concatenate([np.ones(n_pos, np.int32), np.zeros(n_neg, np.int32)])
    return coords, labels


def sample_prompt(mask: np.ndarray, rng: np.random.Generator, box_prob: float = 0.5, jitter: float = 0.1,
                  n_pos: int = 1, n_neg: int = 0) -> PromptSample:
    """A box prompt (probability ``box_prob``) or else a point prompt, like SAM's training recipe.

    A box prompt carries no points; a point prompt has ``n_pos`` positives and ``n_neg`` negatives.
    """
    if rng.random() < box_prob:
        return PromptSample(box=sample_box(mask, rng, jitter))
    points, labels = sample_points(mask, rng, n_pos, n_neg)
    return PromptSample(box=None, points=points, labels=labels)
