"""Synthetic inspection-style datasets for tests, demos and smoke runs.

Images are 8-bit grayscale machined/ceramic surfaces: a smooth illumination field, fine grain
noise and faint machining lines. Each image carries defects of one class:

* ``scratch``: 1-2 thin curved lines, bright or dark;
* ``pit``: 1-3 small dark round blobs (separate regions, i.e. separate objects);
* ``crack``: a thin dark polyline that wanders and branches;
* ``stain``: one large, irregular, low-contrast blotch;
* ``thin_crack``: hairline cracks as a line camera sees them on concrete, asphalt or cast parts: 1-3 px
  wide whatever the frame size, long (a third to most of the frame), wandering and branching, with
  their width changing along the way, on a coarse granular texture, in frames of at least 480x320.
  What a 128 px crop's 32x32 mask grid cannot draw (`edgesam data check` shows its IoU ceiling).

Every defect is drawn into its mask first and the intensity change is applied on exactly the mask
pixels, so the mask is the ground truth of what is visible. Each image's random stream is seeded
by ``(seed, class, index)``, so outputs are byte-identical for a seed and earlier images do not
change when ``count`` grows.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from .io import write_image_atomic

DEFAULT_CLASSES = ("scratch", "pit", "crack", "stain")
FREE_CLASS = "free"
_FREE_STREAM = 1_000_003  # seed-sequence tag of defect-free images, distinct from class indices
_MIN_DEFECT_AREA = 24     # above the loader's default min_area (16), so every drawn defect is kept


# --------------------------------------------------------------------------- surface
def _image_size(rng: np.random.Generator, size: int) -> tuple[int, int]:
    """(H, W), each side independently in [0.75, 1.25] * size: non-square on purpose."""
    h, w = rng.uniform(0.75, 1.25, size=2) * size
    return max(int(round(h)), 16), max(int(round(w)), 16)


def _illumination(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Low-frequency light field: a tilt plus a smooth bicubic-upsampled 3x3 random grid."""
    grid = rng.normal(0.0, 10.0, size=(3, 3)).astype(np.float32)
    smooth = np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = rng.uniform(-15.0, 15.0, size=2)
    return smooth + gx * (xx / w - 0.5) + gy * (yy / h - 0.5)


def _machining_lines(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Faint parallel tool marks: a 1-D noisy periodic profile swept along a random direction."""
    angle = rng.choice([0.0, math.pi / 2]) + rng.normal(0.0, 0.05)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = xx * math.sin(angle) + yy * math.cos(angle)
    t -= t.min()
    n = int(t.max()) + 2
    period = rng.uniform(3.0, 7.0)
    profile = 1.5 * np.sin(2 * math.pi * np.arange(n) / period) + rng.normal(0.0, 1.2, size=n)
    return np.interp(t.ravel(), np.arange(n), profile).reshape(h, w).astype(np.float32)


def make_surface(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Defect-free float32 surface, mean about 90-160 gray levels."""
    base = rng.uniform(90.0, 160.0)
    grain = rng.normal(0.0, rng.uniform(2.0, 4.0), size=(h, w)).astype(np.float32)
    return base + _illumination(rng, h, w) + _machining_lines(rng, h, w) + grain


# --------------------------------------------------------------------------- defects
def _canvas(h: int, w: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    im = Image.new("L", (w, h), 0)
    return im, ImageDraw.Draw(im)


def _bezier(p0, p1, p2, n: int = 40) -> list[tuple[float, float]]:
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = (1 - t) ** 2 * np.asarray(p0) + 2 * (1 - t) * t * np.asarray(p1) + t**2 * np.asarray(p2)
    return [tuple(p) for p in pts.tolist()]


def _line_scale(h: int, w: int) -> int:
    """Line defects widen with the frame (x2 at 256 px): a 1-px line on a large frame is below what a
    segmentation model's quarter-resolution mask can draw, so no model could learn it."""
    return max(1, round(min(h, w) / 128))


def _draw_scratches(rng, h, w, draw) -> float:
    short = min(h, w)
    for _ in range(int(rng.integers(1, 3))):
        p0 = rng.uniform([0.1 * w, 0.1 * h], [0.9 * w, 0.9 * h])
        length = rng.uniform(0.25, 0.7) * short
        theta = rng.uniform(0, 2 * math.pi)
        p2 = np.clip(p0 + length * np.array([math.cos(theta), math.sin(theta)]), 2, [w - 3, h - 3])
        # Control point inside the frame: the curve stays in the hull of its three points, so a
        # scratch never leaves and re-enters the image as a second region.
        ctrl = np.clip((p0 + p2) / 2 + rng.normal(0.0, 0.2 * length, size=2), 2, [w - 3, h - 3])
        draw.line(_bezier(p0, ctrl, p2), fill=255, width=int(rng.integers(1, 4)) * _line_scale(h, w), joint="curve")
    return float(rng.choice([-1.0, 1.0]) * rng.uniform(35.0, 60.0))


def _draw_pits(rng, h, w, draw) -> float:
    centres: list[tuple[float, float, float]] = []
    for _ in range(int(rng.integers(1, 4))):
        for _attempt in range(20):
            r = rng.uniform(3.0, 0.05 * min(h, w) + 3.0)
            cx, cy = rng.uniform(r + 2, w - r - 3), rng.uniform(r + 2, h - r - 3)
            if all(math.hypot(cx - x, cy - y) > r + rr + 4 for x, y, rr in centres):
                break
        else:
            continue
        centres.append((cx, cy, r))
        ry = r * rng.uniform(0.8, 1.0)
        draw.ellipse([cx - r, cy - ry, cx + r, cy + ry], fill=255)
    return -float(rng.uniform(50.0, 80.0))


def _walk(rng, start, heading, steps, step_len, h, w, turn: float = 0.35,
          stop_at_edge: bool = False) -> list[tuple[float, float]]:
    """A random walk of `steps` steps; at the frame's edge it stops (`stop_at_edge`) or slides along it."""
    pts = [tuple(start)]
    x, y = start
    for _ in range(steps):
        heading += rng.normal(0.0, turn)
        nx, ny = x + step_len * math.cos(heading), y + step_len * math.sin(heading)
        if stop_at_edge and not (1 <= nx <= w - 2 and 1 <= ny <= h - 2):
            break
        x, y = float(np.clip(nx, 1, w - 2)), float(np.clip(ny, 1, h - 2))
        pts.append((x, y))
    return pts


def _draw_crack(rng, h, w, draw) -> float:
    short = min(h, w)
    step = rng.uniform(4.0, 7.0)
    steps = max(4, int(rng.uniform(0.3, 0.6) * short / step))
    start = rng.uniform([0.2 * w, 0.2 * h], [0.8 * w, 0.8 * h])
    main = _walk(rng, start, rng.uniform(0, 2 * math.pi), steps, step, h, w)
    width = int(rng.integers(1, 3)) * _line_scale(h, w)
    draw.line(main, fill=255, width=width, joint="curve")
    for _ in range(int(rng.integers(1, 3))):
        i = int(rng.integers(1, len(main) - 1))
        (x0, y0), (x1, y1) = main[i - 1], main[i]
        heading = math.atan2(y1 - y0, x1 - x0) + rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0)
        draw.line(_walk(rng, main[i], heading, max(2, steps // 3), step, h, w), fill=255,
                  width=_line_scale(h, w))
    return -float(rng.uniform(40.0, 70.0))


def _draw_stain(rng, h, w, draw) -> float:
    short = min(h, w)
    cx, cy = rng.uniform(0.3 * w, 0.7 * w), rng.uniform(0.3 * h, 0.7 * h)
    radius = rng.uniform(0.15, 0.3) * short
    phi = np.linspace(0, 2 * math.pi, 64, endpoint=False)
    wobble = sum(rng.uniform(0, 0.15) * np.cos(k * phi + rng.uniform(0, 2 * math.pi)) for k in (2, 3, 4))
    r = radius * (1.0 + wobble)
    draw.polygon(list(zip((cx + r * np.cos(phi)).tolist(), (cy + r * np.sin(phi)).tolist())), fill=255)
    return float(rng.choice([-1.0, 1.0]) * rng.uniform(15.0, 22.0))


THIN_FRAME = (320, 480)  # (H, W) at least: the frames of the line cameras hairline cracks are inspected with


def _draw_thin_cracks(rng, h, w, draw) -> float:
    """1-2 cracks, each a long wandering walk with 2-4 branches; 1-3 px wide, changing along the way."""
    diagonal = math.hypot(h, w)
    for _ in range(int(rng.integers(1, 3))):
        step = rng.uniform(5.0, 9.0)
        steps = max(8, int(rng.uniform(0.2, 0.55) * diagonal / step))
        start = rng.uniform([0.25 * w, 0.25 * h], [0.75 * w, 0.75 * h])
        main = _walk(rng, start, rng.uniform(0, 2 * math.pi), steps, step, h, w, turn=0.25, stop_at_edge=True)
        if len(main) < 4:
            continue
        _draw_varying(rng, main, draw)
        for _ in range(int(rng.integers(2, 5))):
            i = int(rng.integers(1, len(main) - 1))
            (x0, y0), (x1, y1) = main[i - 1], main[i]
            heading = math.atan2(y1 - y0, x1 - x0) + rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 1.1)
            branch = _walk(rng, main[i], heading, max(3, steps // int(rng.integers(3, 6))), step, h, w,
                           stop_at_edge=True)
            _draw_varying(rng, branch, draw, widths=(1, 2), weights=(0.5, 0.5))
    return -float(rng.uniform(30.0, 60.0))


def _draw_varying(rng, points, draw, widths=(1, 2, 3), weights=(0.2, 0.4, 0.4)) -> None:
    """A polyline whose width (px) changes every few segments, as a real crack's opening does."""
    i = 0
    while i < len(points) - 1:
        run = int(rng.integers(2, 7))
        draw.line(points[i:i + run + 1], fill=255, width=int(rng.choice(widths, p=weights)), joint="curve")
        i += run


def _granular(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Coarse aggregate texture: dark and light grains of a few pixels at several scales, plus pores."""
    out = np.zeros((h, w), np.float32)
    for cell, amp in ((2, 9.0), (5, 7.0), (11, 5.0)):
        grid = rng.normal(0.0, amp, size=(h // cell + 2, w // cell + 2)).astype(np.float32)
        out += np.asarray(Image.fromarray(grid).resize((w + 2 * cell, h + 2 * cell), Image.Resampling.BILINEAR))[
            cell:cell + h, cell:cell + w]
    pores = rng.random((h, w)) < 0.002  # isolated dark pits a crack detector must not take for a crack
    return out - 30.0 * pores


DEFECTS: dict[str, Callable] = {
    "scratch": _draw_scratches, "pit": _draw_pits, "crack": _draw_crack, "stain": _draw_stain,
    "thin_crack": _draw_thin_cracks,
}


def make_defect_image(rng: np.random.Generator, defect: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 [H,W], mask uint8 [H,W] 0/255) with ``defect`` drawn; retries tiny draws."""
    if defect not in DEFECTS:
        raise ValueError(f"unknown defect class {defect!r}; known: {sorted(DEFECTS)}")
    h, w = _image_size(rng, size)
    if defect == "thin_crack":
        h, w = max(h, THIN_FRAME[0]), max(w, THIN_FRAME[1])
    surface = make_surface(rng, h, w)
    if defect == "thin_crack":
        surface = surface + _granular(rng, h, w)
    for _ in range(10):
        canvas, draw = _canvas(h, w)
        delta = DEFECTS[defect](rng, h, w, draw)
        mask = np.asarray(canvas) > 0
        if mask.sum() >= _MIN_DEFECT_AREA:
            break
    # Mild texture inside the defect so it is not a flat stamp, applied on mask pixels only.
    texture = 1.0 + rng.normal(0.0, 0.08, size=(h, w)).astype(np.float32)
    image = surface + np.where(mask, delta * texture, 0.0).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), mask.astype(np.uint8) * np.uint8(255)


def make_free_image(rng: np.random.Generator, size: int) -> np.ndarray:
    h, w = _image_size(rng, size)
    return np.clip(np.rint(make_surface(rng, h, w)), 0, 255).astype(np.uint8)


def _per_class_counts(count: int, n_classes: int) -> list[int]:
    base, extra = divmod(count, n_classes)
    return [base + (1 if i < extra else 0) for i in range(n_classes)]


def synthesize_dataset(out_dir: str | os.PathLike, count: int = 32, seed: int = 0, size: int = 256,
                       classes: Sequence[str] = DEFAULT_CLASSES, free_count: int = 0) -> Path:
    """Write a per-class synthetic dataset and return its root.

    ``count`` labelled images in total, spread evenly over ``classes`` (the first classes get the
    remainder), as ``out/<class>/images/<class>_NNN.png`` + ``out/<class>/masks/<class>_NNN.png``
    (8-bit, 0/255); ``free_count`` defect-free images in ``out/free/images/``. Files are written
    atomically; files already there with the same names are replaced, others are left alone.
    """
    if count < 0 or free_count < 0:
        raise ValueError(f"count and free_count must be >= 0, got {count}, {free_count}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if size < 16:
        raise ValueError(f"size must be >= 16 pixels, got {size}")
    classes = list(classes)
    unknown = [c for c in classes if c not in DEFECTS]
    if unknown or not classes:
        raise ValueError(f"classes must be a non-empty subset of {sorted(DEFECTS)}, got {classes}")
    out = Path(out_dir)
    for cls, n in zip(classes, _per_class_counts(count, len(classes))):
        stream = list(DEFECTS).index(cls)
        for i in range(n):
            rng = np.random.default_rng([seed, stream, i])
            image, mask = make_defect_image(rng, cls, size)
            write_image_atomic(out / cls / "images" / f"{cls}_{i:03d}.png", image)
            write_image_atomic(out / cls / "masks" / f"{cls}_{i:03d}.png", mask)
    for i in range(free_count):
        rng = np.random.default_rng([seed, _FREE_STREAM, i])
        write_image_atomic(out / FREE_CLASS / "images" / f"{FREE_CLASS}_{i:03d}.png", make_free_image(rng, size))
    out.mkdir(parents=True, exist_ok=True)
    return out
