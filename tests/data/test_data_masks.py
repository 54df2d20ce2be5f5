"""Mask semantics: connected components (checked against a plain flood fill), instance ids, auto."""
from __future__ import annotations

import time
from collections import deque

import numpy as np
import pytest

from edgesam.data import count_objects, label_components, mask_to_objects, resolve_mask_mode


def flood_fill_reference(fg: np.ndarray) -> list[frozenset]:
    """Slow, obviously-correct 8-connected components as sets of (row, col)."""
    seen = np.zeros_like(fg, bool)
    comps = []
    h, w = fg.shape
    for r0, c0 in zip(*np.nonzero(fg)):
        if seen[r0, c0]:
            continue
        comp, queue = set(), deque([(r0, c0)])
        seen[r0, c0] = True
        while queue:
            r, c = queue.popleft()
            comp.add((int(r), int(c)))
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    if 0 <= rr < h and 0 <= cc < w and fg[rr, cc] and not seen[rr, cc]:
                        seen[rr, cc] = True
                        queue.append((rr, cc))
        comps.append(frozenset(comp))
    return comps


@pytest.mark.parametrize("density,seed", [(0.2, 0), (0.45, 1), (0.6, 2), (0.05, 3)])
def test_components_match_flood_fill(density, seed):
    fg = np.random.default_rng(seed).random((37, 53)) < density
    labels, n = label_components(fg)
    ours = {frozenset(zip(*map(lambda a: a.tolist(), np.nonzero(labels == k)))) for k in range(1, n + 1)}
    ref = set(flood_fill_reference(fg))
    assert n == len(ref)
    assert ours == ref
    assert ((labels > 0) == fg).all()


def test_labels_in_raster_order_and_diagonal_connects():
    fg = np.zeros((6, 6), bool)
    fg[0, 4] = fg[1, 5] = True          # diagonal pair: one component under 8-connectivity
    fg[3, 0] = fg[4, 1] = fg[5, 2] = True  # anti-diagonal chain
    fg[5, 5] = True
    labels, n = label_components(fg)
    assert n == 3
    assert labels[0, 4] == labels[1, 5] == 1
    assert labels[3, 0] == labels[5, 2] == 2
    assert labels[5, 5] == 3


def test_binary_two_regions_two_objects():
    m = np.zeros((40, 50), np.uint8)
    m[2:12, 3:13] = 255
    m[20:35, 30:45] = 255
    objs = mask_to_objects(m, "binary", min_area=16)
    assert objs.shape == (2, 40, 50) and objs.dtype == bool
    assert objs[0].sum() == 100 and objs[1].sum() == 225
    assert objs[0][2:12, 3:13].all() and not objs[0][20:35, 30:45].any()


def test_min_area_drops_small_regions():
    m = np.zeros((30, 30), np.uint8)
    m[0:10, 0:10] = 255  # 100 px
    m[20:23, 20:23] = 255  # 9 px
    assert mask_to_objects(m, "binary", min_area=16).shape[0] == 1
    assert mask_to_objects(m, "binary", min_area=9).shape[0] == 2
    assert mask_to_objects(m, "binary", min_area=101).shape[0] == 0


def test_binary_threshold_ignores_soft_edges():
    m = np.zeros((20, 20), np.uint8)
    m[5:15, 5:15] = 255
    m[4, 5:15] = 100  # anti-aliased edge below threshold
    m[15, 5:15] = 200  # above threshold: foreground
    objs = mask_to_objects(m, "binary", min_area=1)
    assert objs.shape[0] == 1 and objs[0].sum() == 110


def test_instance_ids_one_object_each_even_when_split():
    m = np.zeros((20, 20), np.uint8)
    m[0:5, 0:5] = 1
    m[10:15, 10:15] = 1  # same id, separate region: still one object
    m[0:5, 10:20] = 2
    m[5:10, 0:5] = 3  # touches id 1: still separate objects
    objs = mask_to_objects(m, "instance", min_area=1)
    assert objs.shape[0] == 3
    assert objs[0].sum() == 50 and objs[1].sum() == 50 and objs[2].sum() == 25
    assert objs[0][12, 12] and objs[0][2, 2]


def test_instance_16bit_ids():
    m = np.zeros((10, 10), np.uint16)
    m[:5, :5] = 1000
    m[5:, 5:] = 40000
    assert resolve_mask_mode(m) == "instance"
    assert mask_to_objects(m, min_area=1).shape[0] == 2


def test_empty_mask_gives_zero_objects():
    objs = mask_to_objects(np.zeros((7, 9), np.uint8))
    assert objs.shape == (0, 7, 9)


def test_auto_rule():
    binary = np.zeros((50, 50), np.uint8)
    binary[10:20, 10:20] = 255
    binary[30:40, 30:40] = 255
    assert resolve_mask_mode(binary) == "binary"
    assert mask_to_objects(binary).shape[0] == 2
    # JPEG-ish: 255 with a few intermediate edge values -> binary
    jpegish = binary.copy()
    jpegish[9, 10:20] = 37
    jpegish[20, 10:20] = 180
    assert resolve_mask_mode(jpegish) == "binary"
    # 0/1 mask: single non-zero value, foreground = 1, regions split
    assert resolve_mask_mode(binary // 255) == "binary"
    assert mask_to_objects(binary // 255).shape[0] == 2
    # instance ids 1..3
    ids = np.zeros((50, 50), np.uint8)
    ids[0:10, 0:10], ids[20:30, 20:30], ids[40:50, 0:10] = 1, 2, 3
    assert resolve_mask_mode(ids) == "instance"
    assert mask_to_objects(ids).shape[0] == 3
    # scattered low noise values (near-empty JPEG mask): binary, nothing above 127 -> no object
    noise = np.zeros((50, 50), np.uint8)
    rng = np.random.default_rng(0)
    noise.flat[rng.choice(2500, 200, replace=False)] = rng.integers(1, 40, 200)
    assert resolve_mask_mode(noise) == "binary"
    assert mask_to_objects(noise).shape[0] == 0


@pytest.mark.parametrize("mode", ["auto", "binary", "instance"])
def test_count_objects_agrees_with_masks(mode):
    rng = np.random.default_rng(5)
    m = (rng.random((40, 40)) < 0.3).astype(np.uint8) * rng.integers(1, 4, (40, 40)).astype(np.uint8) * 60
    for min_area in (1, 3, 16):
        assert count_objects(m, mode, min_area) == mask_to_objects(m, mode, min_area).shape[0]


def test_bad_mode_rejected():
    with pytest.raises(ValueError, match="mask_mode"):
        mask_to_objects(np.zeros((3, 3), np.uint8), "semantic")


def test_speed_600x600_few_regions():
    m = np.zeros((600, 600), np.uint8)
    m[100:300, 50:250] = 255
    m[400:420, 400:580] = 255
    yy, xx = np.mgrid[:600, :600]
    m[(yy - 300) ** 2 + (xx - 450) ** 2 < 50 ** 2] = 255
    mask_to_objects(m)
    best = min(_timed(mask_to_objects, m) for _ in range(5))
    assert mask_to_objects(m).shape[0] == 3
    assert best < 0.05, f"mask_to_objects took {best * 1000:.1f} ms"  # ~7 ms here; loose for slow CI


def _timed(fn, *args):
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t
