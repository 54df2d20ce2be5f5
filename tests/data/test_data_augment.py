"""Augmenter: joint geometry keeps masks on the pixels they label; dtype/shape; determinism."""
from __future__ import annotations

import numpy as np
import pytest

from edgesam.data import AugmentConfig, Augmenter

GEOMETRY_ONLY = AugmentConfig(hflip_p=0.5, vflip_p=0.5, rot90_p=0.5, affine_p=1.0, photometric_p=0.0,
                              noise_p=0.0, blur_p=0.0)


def _scene(h=64, w=80, dtype=np.uint8):
    """Dark textured surface with two bright squares; masks are exactly the squares."""
    rng = np.random.default_rng(0)
    top = 200 if dtype == np.uint8 else 50000
    low = 30 if dtype == np.uint8 else 8000
    image = (low + rng.integers(0, 10, (h, w))).astype(dtype)
    masks = np.zeros((2, h, w), bool)
    masks[0, 8:28, 10:34] = True
    masks[1, 40:56, 50:72] = True
    image[masks.any(0)] = top
    return image, masks, (low + top) / 2


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_geometry_keeps_masks_aligned(dtype):
    image, masks, thr = _scene(dtype=dtype)
    aug = Augmenter(GEOMETRY_ONLY)
    for seed in range(12):
        out, out_masks = aug(image, masks, np.random.default_rng(seed))
        assert out.dtype == dtype and out.shape == image.shape
        assert out_masks.dtype == bool and out_masks.shape[1:] == image.shape
        assert out_masks.shape[0] == 2
        assert _iou(out > thr, out_masks.any(0)) > 0.9, seed


def test_default_config_keeps_alignment_with_photometric():
    image, masks, _ = _scene()
    aug = Augmenter(AugmentConfig(photometric_p=1.0, noise_p=1.0, blur_p=1.0))
    for seed in range(8):
        out, out_masks = aug(image, masks, np.random.default_rng(seed))
        fg = out_masks.any(0)
        thr = (out[fg].mean() + out[~fg].mean()) / 2
        assert out[fg].mean() - out[~fg].mean() > 60
        assert _iou(out > thr, fg) > 0.85, seed


def test_deterministic_per_seed_and_varies():
    image, masks, _ = _scene()
    aug = Augmenter(AugmentConfig(photometric_p=1.0, noise_p=1.0))
    a = aug(image, masks, np.random.default_rng(3))
    b = aug(image, masks, np.random.default_rng(3))
    c = aug(image, masks, np.random.default_rng(4))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    # without an rng the augmenter's own seeded generator is used
    x = Augmenter(seed=11)(image, masks)
    y = Augmenter(seed=11)(image, masks)
    np.testing.assert_array_equal(x[0], y[0])


def test_disabled_is_identity():
    image, masks, _ = _scene()
    out, out_masks = Augmenter(AugmentConfig(enabled=False))(image, masks, np.random.default_rng(0))
    np.testing.assert_array_equal(out, image)
    np.testing.assert_array_equal(out_masks, masks)


@pytest.mark.parametrize("channels", [3, 4])
def test_colour_images_keep_shape_and_alpha(channels):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, channels), dtype=np.uint8)
    if channels == 4:
        image[..., 3] = 255
    masks = np.zeros((1, 40, 50), bool)
    masks[0, 10:20, 10:20] = True
    cfg = AugmentConfig(hflip_p=0, vflip_p=0, rot90_p=0, affine_p=0, photometric_p=1, noise_p=1, blur_p=1)
    out, out_masks = Augmenter(cfg)(image, masks, np.random.default_rng(1))
    assert out.shape == image.shape and out.dtype == np.uint8
    if channels == 4:
        assert (out[..., 3] == 255).all()
    np.testing.assert_array_equal(out_masks, masks)


def test_vanished_objects_dropped():
    image = np.zeros((40, 40), np.uint8)
    masks = np.zeros((2, 40, 40), bool)
    masks[0, 0:2, 0:2] = True  # corner: pushed out by a 2x zoom about the centre
    masks[1, 18:22, 18:22] = True
    cfg = AugmentConfig(hflip_p=0, vflip_p=0, rot90_p=0, affine_p=1, rotate_deg=0, scale=(2.0, 2.0),
                        photometric_p=0, noise_p=0, blur_p=0)
    _, out_masks = Augmenter(cfg)(image, masks, np.random.default_rng(0))
    assert out_masks.shape == (1, 40, 40)
    assert out_masks[0, 12:28, 12:28].sum() > 40


def test_rot90_shape_policy():
    image = np.zeros((30, 50), np.uint8)
    masks = np.zeros((0, 30, 50), bool)
    only_rot = dict(hflip_p=0, vflip_p=0, rot90_p=1, affine_p=0, photometric_p=0, noise_p=0, blur_p=0)
    shapes = {Augmenter(AugmentConfig(**only_rot))(image, masks, np.random.default_rng(s))[0].shape for s in range(10)}
    assert shapes == {(30, 50)}
    free = AugmentConfig(**only_rot, keep_shape=False)
    shapes = {Augmenter(free)(image, masks, np.random.default_rng(s))[0].shape for s in range(10)}
    assert (50, 30) in shapes


def test_config_validation_and_roundtrip():
    with pytest.raises(ValueError, match="hflip_p"):
        AugmentConfig(hflip_p=1.5)
    with pytest.raises(ValueError, match="scale"):
        AugmentConfig(scale=(1.2, 0.9))
    cfg = AugmentConfig(noise_std=0.05)
    assert AugmentConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        AugmentConfig.from_dict({"nope": 1})


def test_mask_shape_mismatch_rejected():
    with pytest.raises(ValueError, match="masks"):
        Augmenter()(np.zeros((10, 10), np.uint8), np.zeros((1, 9, 10), bool), np.random.default_rng(0))
