"""Per-call limits (frame pixels, prompt sets, memory estimate) refuse before allocating, and masks
cropped to their windows equal the full-frame masks exactly."""
from __future__ import annotations

import numpy as np
import pytest

from edgesam_runtime import InvalidInputError, Segmenter
from edgesam_runtime.limits import Limits, encode_bytes, full_mask_bytes

BOXES = np.array([[10, 10, 40, 50], [60, 20, 135, 85], [0, 0, 6, 6], [100, 70, 139, 89]], np.float32)


def test_a_huge_frame_is_refused_by_default_before_anything_is_allocated(segmenter):
    frame = np.broadcast_to(np.zeros(1, np.uint8), (20000, 20000))  # 400 MP that occupy no memory
    with pytest.raises(InvalidInputError, match=r"400\.0 megapixels.*limits\.max_frame_pixels"):
        segmenter.encode(frame)


def test_frame_and_prompt_limits_are_overridable(bundle_dir, make_image):
    seg = Segmenter.open(bundle_dir, threads=1, warmup=False, limits=Limits(max_frame_pixels=50 * 50, max_prompt_sets=2))
    with pytest.raises(InvalidInputError, match="max_frame_pixels"):
        seg.encode(make_image())  # 140 x 90
    emb = seg.encode(make_image(40, 50))
    with pytest.raises(InvalidInputError, match=r"3 prompt sets.*max_prompt_sets"):
        seg.segment(emb, boxes=[[1, 1, 9, 9]] * 3)
    assert seg.segment(emb, boxes=[[1, 1, 9, 9]] * 2).masks.shape == (2, 1, 40, 50)


def test_memory_estimate_refuses_full_masks_but_admits_cropped_ones(bundle_dir, make_image):
    image = make_image()
    full = full_mask_bytes(len(BOXES), 1, image.shape)
    budget = max(encode_bytes(image, roi=False), full - 1)
    seg = Segmenter.open(bundle_dir, threads=1, warmup=False, limits=Limits(max_call_bytes=budget))
    emb = seg.encode(image)
    with pytest.raises(InvalidInputError, match=r"segment: .* full-frame masks .*max_call_bytes.*crop=True"):
        seg.segment(emb, boxes=BOXES)
    assert len(seg.segment(emb, boxes=BOXES, crop=True).masks) == len(BOXES)
    tight = Segmenter.open(bundle_dir, threads=1, warmup=False, limits=Limits(max_call_bytes=encode_bytes(image, False) - 1))
    with pytest.raises(InvalidInputError, match=r"encode: a 140x90 frame needs"):
        tight.encode(image)


@pytest.mark.parametrize("multimask", [False, True])
def test_cropped_masks_paste_back_to_the_full_masks(segmenter, make_image, multimask):
    emb = segmenter.encode(make_image())
    full = segmenter.segment(emb, boxes=BOXES, multimask=multimask)
    cropped = segmenter.segment(emb, boxes=BOXES, multimask=multimask, crop=True)
    assert full.masks.any(), "some full masks must be non-empty for the comparison to mean anything"
    assert cropped.cropped and cropped.offsets.shape == (len(BOXES), 2)
    np.testing.assert_array_equal(cropped.full_masks(), full.masks)
    np.testing.assert_array_equal(cropped.scores, full.scores)
    for window, (x0, y0), whole in zip(cropped.masks, cropped.offsets, full.masks):
        assert window.shape[0] == whole.shape[0]
        assert window.sum() == whole.sum()  # nothing foreground was left outside the window
        if window.size:
            np.testing.assert_array_equal(window, whole[:, y0:y0 + window.shape[1], x0:x0 + window.shape[2]])
    best = cropped.best()
    np.testing.assert_array_equal(best.full_masks(), full.best().masks)


def test_elongated_frame_gets_a_typed_error(segmenter):
    with pytest.raises(InvalidInputError, match=r"1x5000 \(HxW\) frame has a side of 0 px"):
        segmenter.encode(np.zeros((1, 5000), np.uint8))


@pytest.mark.parametrize("threads", [-1, 0, "2", 1.5, True])
def test_threads_must_be_a_positive_integer(bundle_dir, threads):
    with pytest.raises(InvalidInputError, match="threads: expected a positive integer"):
        Segmenter.open(bundle_dir, threads=threads, warmup=False)


@pytest.mark.parametrize("field", ["max_frame_pixels", "max_prompt_sets", "max_call_bytes"])
def test_limits_must_be_positive_integers(field):
    with pytest.raises(InvalidInputError, match=f"limits.{field}"):
        Limits(**{field: 0})
