"""Per-mask time of `geometry.upscale_masks`: the previous row/column-skipping version vs the current
boundary-band version, side by side in one run.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/runtime/upscale_masks_speed.py

Low-res 256x256 logits (SAM's decoder output), target 1024; median of N runs per case. Every case
also checks that both versions equal `upscale_logits(...) > 0`.
"""
from __future__ import annotations

import sys

import numpy as np

from edgesam_runtime import geometry
from edgesam_runtime.geometry import MASK_THRESHOLD, _upscale_matrix, resized_shape
from edgesam_runtime.timing import repeat_ms

RUNS = 25
LOW = 256
TARGET = 1024


def old_upscale_masks(low_res, original_hw, target, threshold=MASK_THRESHOLD):
    """The implementation before the boundary-band rewrite (skips rows/cols that cannot be positive)."""
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


def dense_blobs(seed: int, frac: float = 0.6) -> np.ndarray:
    """Smooth Gaussian blobs, thresholded so ~`frac` of the image is positive (a large object)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:LOW, 0:LOW].astype(np.float32)
    field = np.zeros((LOW, LOW), np.float32)
    for _ in range(6):
        cy, cx = rng.uniform(0, LOW, 2)
        s = rng.uniform(LOW / 10, LOW / 4)
        field += rng.uniform(0.5, 1.5) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return ((field - np.quantile(field, 1 - frac)) * 20).astype(np.float32)


def sparse_object() -> np.ndarray:
    """One small object (a 6x10 low-res patch) on a negative background."""
    low = np.full((LOW, LOW), -8.0, np.float32)
    low[120:126, 100:110] = 6.0
    return low


def median_ms(fn, low, hw) -> float:
    # one untimed call warms the matrix caches
    return float(np.median(repeat_ms(lambda: fn(low, hw, TARGET), RUNS, warmup=1)))


def main() -> None:
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, low-res {LOW}x{LOW}, target {TARGET}, "
          f"median of {RUNS} runs per mask")
    print("| original | mask | positive | old ms | new ms | speed-up | equal to upscale_logits > 0 |")
    print("|---|---|---|---|---|---|---|")
    for hw in [(1500, 2250), (400, 600)]:
        for name, low in [("dense (blobs, seed 0)", dense_blobs(0)), ("dense (blobs, seed 1)", dense_blobs(1)),
                          ("sparse (one small object)", sparse_object())]:
            ref = geometry.upscale_logits(low, hw, TARGET) > 0
            ok = np.array_equal(old_upscale_masks(low, hw, TARGET), ref) and np.array_equal(
                geometry.upscale_masks(low, hw, TARGET), ref)
            old = median_ms(old_upscale_masks, low, hw)
            new = median_ms(geometry.upscale_masks, low, hw)
            print(f"| {hw[0]}x{hw[1]} | {name} | {ref.mean():.1%} | {old:.2f} | {new:.2f} | {old / new:.1f}x | {ok} |")


if __name__ == "__main__":
    main()
