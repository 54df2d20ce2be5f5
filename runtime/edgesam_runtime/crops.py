"""Masks cropped to the window they can occupy, with its offset in the frame (`segment(..., crop=True)`).

Full-frame masks cost B x M x H x W bytes: 64 boxes on a 20000 x 20000 frame are 24 GiB, although
each defect covers a few hundred pixels. A cropped result keeps, per prompt set, only the window
that can hold foreground, exactly (pasting the windows into an all-False frame gives the full masks
bit for bit):

- ROI-framed bundle: the crop window of the box (as `edgesam_runtime.roi.crop_windows` cuts it), clipped to
  the frame; nothing outside it is ever foreground.
- whole-image bundle: the smallest window holding every pixel whose low-res support can exceed the
  threshold (`edgesam_runtime.geometry.upscale_mask_blocks`); a set whose masks are all empty gets a 0x0 window.
"""
from __future__ import annotations

import numpy as np

from edgesam_runtime import geometry, roi
from edgesam_runtime.limits import Limits, cropped_mask_bytes


def clipped_windows(windows: np.ndarray, frame_hw) -> np.ndarray:
    """(B, 3) ROI windows (x0, y0, side) -> (B, 4) x0, y0, x1, y1 of their part inside the frame."""
    h, w = int(frame_hw[0]), int(frame_hw[1])
    windows = np.asarray(windows, dtype=np.int64).reshape(-1, 3)
    x0, y0, side = windows[:, 0], windows[:, 1], windows[:, 2]
    return np.stack([np.clip(x0, 0, w), np.clip(y0, 0, h), np.clip(x0 + side, 0, w), np.clip(y0 + side, 0, h)], axis=1)


def roi_crops(low_res: np.ndarray, windows: np.ndarray, frame_hw, image_size: int, limits: Limits):
    """(B, M, s, s) logits of B ROI crops -> (tuple of B (M, h, w) bool masks, (B, 2) offsets x0, y0)."""
    clipped = clipped_windows(windows, frame_hw)
    areas = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    side = int(np.max(np.asarray(windows)[:, 2]))
    limits.check_bytes("segment", cropped_mask_bytes(areas, low_res.shape[1], side * side * low_res.shape[1]),
                       f"{len(areas)} cropped masks")
    masks = tuple(roi.window_masks(logits, window, frame_hw, image_size)
                  for logits, window in zip(np.asarray(low_res, dtype=np.float32), np.asarray(windows, dtype=np.int64)))
    return masks, clipped[:, :2].copy()


def image_crops(low_res: np.ndarray, frame_hw, image_size: int, limits: Limits):
    """(B, M, h, w) whole-image logits -> (tuple of B (M, h_k, w_k) bool masks, (B, 2) offsets x0, y0).

    The windows are known only once each mask's extent is: the running total is checked against the
    limit before each set's window is allocated (one mask's upscaled block is the transient cost,
    checked before the decoder ran)."""
    masks, offsets, total = [], [], 0
    for k, logits in enumerate(np.asarray(low_res, dtype=np.float32)):
        found = [(m, block) for m, block in enumerate(geometry.upscale_mask_blocks(logits, frame_hw, image_size))
                 if block is not None]
        if not found:
            masks.append(np.zeros((len(logits), 0, 0), dtype=bool))
            offsets.append((0, 0))
            continue
        y0 = min(origin[0] for _, (origin, _) in found)
        x0 = min(origin[1] for _, (origin, _) in found)
        y1 = max(origin[0] + values.shape[0] for _, (origin, values) in found)
        x1 = max(origin[1] + values.shape[1] for _, (origin, values) in found)
        total += len(logits) * (y1 - y0) * (x1 - x0)
        limits.check_bytes("segment", cropped_mask_bytes([total], 1, 0), f"{k + 1} cropped masks")
        window = np.zeros((len(logits), y1 - y0, x1 - x0), dtype=bool)
        for m, ((by, bx), values) in found:
            window[m, by - y0:by - y0 + values.shape[0], bx - x0:bx - x0 + values.shape[1]] = values
        masks.append(window)
        offsets.append((x0, y0))
    return tuple(masks), np.asarray(offsets, dtype=np.int64).reshape(-1, 2)


def paste(masks, offsets: np.ndarray, frame_hw) -> np.ndarray:
    """Cropped masks back into full frames: (B, M, H, W) bool."""
    h, w = int(frame_hw[0]), int(frame_hw[1])
    count = max((m.shape[0] for m in masks), default=1)
    out = np.zeros((len(masks), count, h, w), dtype=bool)
    for k, (window, (x0, y0)) in enumerate(zip(masks, np.asarray(offsets, dtype=np.int64))):
        out[k, :, y0:y0 + window.shape[1], x0:x0 + window.shape[2]] = window
    return out
