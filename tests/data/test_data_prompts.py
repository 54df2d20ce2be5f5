"""Prompt sampling: tight boxes (inclusive corners), jitter bounds, point labels."""
from __future__ import annotations

import numpy as np
import pytest

from edgesam.data import PromptSample, sample_box, sample_points, sample_prompt


def _mask():
    m = np.zeros((60, 80), bool)
    m[10:30, 20:50] = True  # rows 10..29, cols 20..49
    return m


def test_tight_box_inclusive_convention():
    box = sample_box(_mask(), np.random.default_rng(0), jitter=0)
    assert box.dtype == np.float32 and box.shape == (4,)
    np.testing.assert_array_equal(box, [20, 10, 49, 29])


def test_jittered_box_stays_valid_and_varies():
    m = _mask()
    rng = np.random.default_rng(1)
    boxes = np.stack([sample_box(m, rng, jitter=0.2) for _ in range(200)])
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= 79).all()
    assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= 59).all()
    assert (boxes[:, 2] - boxes[:, 0] >= 2).all() and (boxes[:, 3] - boxes[:, 1] >= 2).all()
    assert boxes[:, 0].std() > 1.0  # ~0.2 * 29 px
    assert abs(np.median(boxes[:, 0]) - 20) < 3


def test_box_of_tiny_object_near_border():
    m = np.zeros((10, 10), bool)
    m[0, 9] = True
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(sample_box(m, rng, 0), [9, 0, 9, 0])
    for _ in range(20):
        b = sample_box(m, rng, 0.5)
        assert 0 <= b[0] <= b[2] <= 9 and 0 <= b[1] <= b[3] <= 9


def test_points_inside_and_outside():
    m = _mask()
    rng = np.random.default_rng(2)
    coords, labels = sample_points(m, rng, n_pos=50, n_neg=50)
    assert coords.shape == (100, 2) and coords.dtype == np.float32 and labels.dtype == np.int32
    xs, ys = coords[:, 0].astype(int), coords[:, 1].astype(int)
    np.testing.assert_array_equal(coords, np.round(coords))  # integer pixel indices
    assert m[ys[labels == 1], xs[labels == 1]].all()
    assert not m[ys[labels == 0], xs[labels == 0]].any()
    neg = coords[labels == 0]  # near the object: box grown by 50 % per side
    assert (neg[:, 0] >= 20 - 15).all() and (neg[:, 0] <= 49 + 15).all()
    assert (neg[:, 1] >= 10 - 10).all() and (neg[:, 1] <= 29 + 10).all()


def test_negatives_when_background_is_scarce():
    m = np.ones((20, 20), bool)
    m[0, 0] = False  # the only background pixel
    coords, labels = sample_points(m, np.random.default_rng(0), n_pos=1, n_neg=3)
    assert (coords[labels == 0] == [0, 0]).all()
    with pytest.raises(ValueError, match="whole image"):
        sample_points(np.ones((5, 5), bool), np.random.default_rng(0), n_neg=1)


def test_empty_mask_rejected():
    with pytest.raises(ValueError, match="empty"):
        sample_box(np.zeros((5, 5), bool), np.random.default_rng(0))


def test_sample_prompt_mix_and_determinism():
    m = _mask()
    prompts = [sample_prompt(m, np.random.default_rng(s), box_prob=0.5, n_pos=2, n_neg=1) for s in range(40)]
    assert all(isinstance(p, PromptSample) for p in prompts)
    boxes = [p for p in prompts if p.box is not None]
    points = [p for p in prompts if p.box is None]
    assert boxes and points
    assert all(p.points.shape == (0, 2) for p in boxes)
    assert all(p.points.shape == (3, 2) and list(p.labels) == [1, 1, 0] for p in points)
    a = sample_prompt(m, np.random.default_rng(7), box_prob=0.0, n_pos=3)
    b = sample_prompt(m, np.random.default_rng(7), box_prob=0.0, n_pos=3)
    np.testing.assert_array_equal(a.points, b.points)
