"""What one runtime call may ask for, and what it will cost, checked before anything large is allocated.

A frame of 20000 x 20000 pixels with 64 boxes asks for 24 GiB of full-frame masks: without a check the
host process meets a bare `MemoryError` (or the kernel's OOM killer) in the middle of a call. Each
`Segmenter` holds a `Limits` (defaults below, overridable at `Segmenter.open(limits=...)`); a call
over one raises `InvalidInputError` naming the limit, before the encoder or decoder runs.

The estimates count the arrays edgesam itself allocates (copies of the frame, masks, the transient
block of one mask being upscaled); the backends' own working memory is a few hundred MB on top.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from edgesam_runtime.errors import InvalidInputError

MIB = 2**20
# Bytes per pixel that upscaling one mask may hold at once: its bool block, and while a ragged mask is
# computed by one block product, that product's float32 values and their thresholded copy.
UPSCALE_BYTES_PER_PIXEL = 6


@dataclass(frozen=True)
class Limits:
    """Per-call limits of a `Segmenter` (all positive integers).

    max_frame_pixels: height x width of a frame given to `encode` (default 100 MP, e.g. 10000 x 10000).
    max_prompt_sets: boxes (or point sets) in one `segment` call; a bundle's own `max_boxes` may be lower.
    max_call_bytes: the memory estimate of one `encode` or `segment` call (default 4 GiB). Masks
        returned cropped to their window (`segment(..., crop=True)`) cost their windows, not full frames.
    """

    max_frame_pixels: int = 100_000_000
    max_prompt_sets: int = 256
    max_call_bytes: int = 4 * 2**30

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(f"limits.{f.name}: expected a positive integer, got {value!r}")

    # -- checks -----------------------------------------------------------------------------------
    def check_frame(self, image: np.ndarray, roi: bool) -> None:
        """Refuse a frame over max_frame_pixels, or one whose preprocessing would exceed max_call_bytes."""
        h, w = image.shape[:2]
        if h * w > self.max_frame_pixels:
            raise InvalidInputError(
                f"image: {w}x{h} (width x height) is {h * w / 1e6:.1f} megapixels; this segmenter takes at most "
                f"{self.max_frame_pixels / 1e6:.1f} (limits.max_frame_pixels; raise it at Segmenter.open(limits=...))")
        self.check_bytes("encode", encode_bytes(image, roi), f"a {w}x{h} frame")

    def check_prompt_sets(self, count: int) -> None:
        if count > self.max_prompt_sets:
            raise InvalidInputError(
                f"prompts: {count} prompt sets (boxes) in one call; this segmenter takes at most {self.max_prompt_sets} "
                "(limits.max_prompt_sets; split the call, or raise it at Segmenter.open(limits=...))")

    def check_bytes(self, call: str, need: int, what: str) -> None:
        if need > self.max_call_bytes:
            raise InvalidInputError(
                f"{call}: {what} needs about {need / MIB:,.0f} MiB; this segmenter allows {self.max_call_bytes / MIB:,.0f} "
                "MiB per call (limits.max_call_bytes); ask for masks cropped to their boxes (segment(..., crop=True)), "
                "send fewer boxes per call, or raise the limit at Segmenter.open(limits=...)")


# -- estimates --------------------------------------------------------------------------------------
def encode_bytes(image: np.ndarray, roi: bool) -> int:
    """What `Segmenter.encode` allocates for `image` before the encoder runs.

    An HxWx3 uint8 copy of the frame (gray repeated, alpha dropped; 16-bit frames are scaled through
    two float32 temporaries); whole-image framing then resizes it in Pillow, which holds RGB as 4 bytes
    per pixel, while ROI framing keeps that copy for the crops.
    """
    h, w = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    pixels = h * w
    need = 3 * pixels
    if image.dtype == np.uint16:
        need += 8 * channels * pixels
    if not roi:
        need += 4 * pixels
    return int(need)


def full_mask_bytes(count: int, masks_per_set: int, frame_hw, window_side: int | None = None) -> int:
    """Full-frame masks (count, M, H, W) bool plus the transient block of one mask being upscaled
    (the whole frame; with ROI framing one crop window of `window_side`)."""
    h, w = int(frame_hw[0]), int(frame_hw[1])
    transient = (window_side ** 2) * masks_per_set if window_side else h * w
    return int(count * masks_per_set * h * w + UPSCALE_BYTES_PER_PIXEL * transient)


def cropped_mask_bytes(window_areas, masks_per_set: int, transient_pixels: int) -> int:
    """Masks cropped to windows of the given areas, plus the transient block of one mask being upscaled."""
    return int(masks_per_set * int(np.sum(window_areas, dtype=np.int64)) + UPSCALE_BYTES_PER_PIXEL * transient_pixels)
