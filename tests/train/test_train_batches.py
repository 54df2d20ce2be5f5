import numpy as np
import pytest
import torch

from edgesam_runtime import geometry
from edgesam.data import Sample
from edgesam.train.batches import PromptConfig, collate, low_res_targets, prepare_sample


def _sample(h=40, w=80):
    masks = np.zeros((3, h, w), bool)
    masks[0, 4:12, 8:20] = True
    masks[1, 20:36, 40:72] = True
    masks[2, 30:34, 2:6] = True
    image = (np.arange(h * w).reshape(h, w) % 251).astype(np.uint8)
    return Sample("s", "c", image, masks, None)


def test_targets_follow_image_geometry():
    s = _sample()
    t = low_res_targets(s.masks, 64)
    assert t.shape == (3, 1, 16, 16)
    # 80 px wide -> 64; 40 high -> 32: the bottom half of the low-res frame is padding
    assert t[:, :, 8:, :].max() == 0
    # object 1: x 40..71 -> 32..57.6 of 64 (low-res cols 8..14), y 20..35 -> 16..28.8 (rows 4..7)
    assert t[1, 0, 5:7, 9:14].min() == pytest.approx(1.0)
    # mass is preserved by the resize + area average (up to bilinear edges)
    assert t[1].sum() * 16 == pytest.approx(s.masks[1].sum() * (64 / 80) ** 2, rel=0.05)


def test_box_prompts_are_corners_in_resized_frame():
    s = _sample()
    item = prepare_sample(s, 64, np.random.default_rng(0), PromptConfig(box_prob=1.0, box_jitter=0.0), 8)
    assert item.coords.shape == (3, 2, 2) and (item.labels == torch.tensor([2.0, 3.0])).all()
    expected = geometry.transform_boxes(np.array([8, 4, 19, 11], np.float32), (40, 80), 64)
    assert np.allclose(item.coords[0].reshape(-1).numpy(), expected)
    assert not item.multimask and item.image.shape == (1, 3, 64, 64)


def test_single_point_prompts_are_multimask_and_capped():
    s = _sample()
    item = prepare_sample(s, 64, np.random.default_rng(0), PromptConfig(box_prob=0.0), max_objects=2)
    assert item.coords.shape == (2, 2, 2)  # one point + SAM's padding point
    assert (item.labels[:, 0] == 1).all() and (item.labels[:, 1] == -1).all()
    assert item.multimask
    batch = collate([item, None, item])
    assert batch.images.shape == (2, 3, 64, 64) and len(batch.items) == 2


def test_no_objects_gives_none():
    s = _sample()
    s.masks = s.masks[:0]
    assert prepare_sample(s, 64, np.random.default_rng(0), PromptConfig(), 4) is None
