"""Mask overlays for people to look at (numpy + Pillow; no torch)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from edgesam_runtime.geometry import to_rgb_uint8

COLORS = [(255, 64, 64), (64, 200, 255), (255, 200, 0), (120, 255, 120), (220, 120, 255), (255, 140, 60)]


def overlay(image: np.ndarray, masks: np.ndarray, boxes=None, points=None, labels=None, alpha: float = 0.45) -> Image.Image:
    """The image with each (H, W) mask tinted in its own colour, plus the prompts drawn on top."""
    rgb = to_rgb_uint8(image).astype(np.float32)
    for i, mask in enumerate(np.asarray(masks, bool).reshape((-1,) + rgb.shape[:2])):
        color = np.array(COLORS[i % len(COLORS)], np.float32)
        rgb[mask] = (1 - alpha) * rgb[mask] + alpha * color
    out = Image.fromarray(rgb.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(out)
    for i, box in enumerate([] if boxes is None else np.asarray(boxes).reshape(-1, 4)):
        draw.rectangle([float(v) for v in box], outline=COLORS[i % len(COLORS)], width=2)
    for (x, y), label in zip([] if points is None else np.asarray(points).reshape(-1, 2), [] if labels is None else labels):
        color = (0, 255, 0) if label == 1 else (255, 0, 0)
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill=color, outline=(0, 0, 0))
    return out
