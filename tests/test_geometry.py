"""Geometry against segment-anything's own ResizeLongestSide, Sam.preprocess and Sam.postprocess_masks."""
import numpy as np
import pytest
import torch
from segment_anything.utils.transforms import ResizeLongestSide

from edgesam_runtime import geometry
from edgesam.models import create_model
from tests.tolerances import PREPROCESS_ATOL, UPSCALE_LOGITS_ATOL, UPSCALE_MASK_FLIP_ATOL

SHAPES = [(180, 300), (300, 180), (97, 97), (1500, 2250), (1, 40)]


@pytest.fixture(scope="module")
def sam():
    return create_model("vit_t", image_size=256)


@pytest.mark.parametrize("hw", SHAPES)
def test_resized_shape_matches_segment_anything(hw):
    assert geometry.resized_shape(*hw, 1024) == ResizeLongestSide.get_preprocess_shape(*hw, 1024)


@pytest.mark.parametrize("hw", SHAPES[:3])
def test_preprocess_matches_sam(sam, hw):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, hw + (3,), dtype=np.uint8)
    resized = ResizeLongestSide(256).apply_image(image)
    ref = sam.preprocess(torch.as_tensor(resized).permute(2, 0, 1)[None].float()).numpy()
    ours, original_hw, resized_hw = geometry.preprocess(image, 256)
    assert original_hw == hw and resized_hw == resized.shape[:2]
    np.testing.assert_allclose(ours, ref, atol=PREPROCESS_ATOL, rtol=0)


@pytest.mark.parametrize("hw", SHAPES)
def test_coords_and_boxes_match_segment_anything(hw):
    rng = np.random.default_rng(2)
    coords = rng.uniform(0, max(hw), (5, 2))
    boxes = rng.uniform(0, max(hw), (3, 4))
    t = ResizeLongestSide(1024)
    np.testing.assert_allclose(geometry.transform_coords(coords, hw, 1024), t.apply_coords(coords, hw), rtol=1e-6)
    np.testing.assert_allclose(geometry.transform_boxes(boxes, hw, 1024), t.apply_boxes(boxes, hw), rtol=1e-6)


@pytest.mark.parametrize("hw", [(180, 300), (300, 180), (64, 64), (500, 37)])
def test_upscale_logits_matches_postprocess_masks(sam, hw):
    rng = np.random.default_rng(3)
    low = rng.normal(0, 5, (2, 3, 64, 64)).astype(np.float32)
    resized_hw = geometry.resized_shape(*hw, 256)
    ref = sam.postprocess_masks(torch.from_numpy(low), resized_hw, hw).numpy()
    ours = geometry.upscale_logits(low, hw, 256)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=UPSCALE_LOGITS_ATOL, rtol=0)


def test_upscale_masks_equals_thresholded_logits():
    rng = np.random.default_rng(4)
    low = np.full((3, 64, 64), -4.0, np.float32)
    low[0, 10:14, 20:30] = 3.0  # a small object: the sparse path computes only its band
    low[1] = rng.normal(0, 3, (64, 64))  # noise everywhere: the sparse path degenerates to full
    # low[2] stays empty
    hw = (1500, 2250)
    dense = geometry.upscale_logits(low, hw, 1024) > 0
    sparse = geometry.upscale_masks(low, hw, 1024)
    assert sparse.shape == dense.shape and sparse.dtype == bool
    assert np.array_equal(sparse, dense)
    assert dense[0].any() and not dense[2].any()



def _smooth_blobs(seed, size=256, frac=0.6):
    """Low-res logits of a large object: Gaussian blobs thresholded so ~`frac` of cells are positive."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    field = np.zeros((size, size), np.float32)
    for _ in range(6):
        cy, cx = rng.uniform(0, size, 2)
        s = rng.uniform(size / 10, size / 4)
        field += rng.uniform(0.5, 1.5) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return ((field - np.quantile(field, 1 - frac)) * 20).astype(np.float32)


def _assert_masks_match(masks, logits):
    expect = logits > 0
    assert masks.shape == expect.shape and masks.dtype == bool
    differ = masks != expect
    assert np.all(np.abs(logits[differ]) < UPSCALE_MASK_FLIP_ATOL), np.abs(logits[differ]).max()


@pytest.mark.parametrize("hw", [(1500, 2250), (37, 500), (500, 37), (181, 97), (1, 40), (40, 1)])
@pytest.mark.parametrize("frac", [0.5, 0.7])
def test_upscale_masks_dense_smooth_field(hw, frac):
    low = _smooth_blobs(int(frac * 10) + hw[0], frac=frac)
    logits = geometry.upscale_logits(low, hw, 1024)
    masks = geometry.upscale_masks(low, hw, 1024)
    if hw == (1500, 2250):
        assert 0.2 < masks.mean() < 0.95  # really dense, with a long boundary
    _assert_masks_match(masks, logits)


@pytest.mark.parametrize("hw", [(1500, 2250), (181, 97), (1, 40)])
@pytest.mark.parametrize("value", [5.0, 1e-3, -1e-3, -5.0, 0.0])
def test_upscale_masks_constant_maps(hw, value):
    low = np.full((64, 64), value, np.float32)
    masks = geometry.upscale_masks(low, hw, 256)
    assert masks.shape == hw and masks.dtype == bool
    assert masks.all() if value > 0 else not masks.any()


def test_upscale_masks_object_in_padding_only():
    # (37, 500) fills only the top ~19 of 256 low-res rows: positives below never reach the output.
    low = np.full((256, 256), -3.0, np.float32)
    low[200:, :] = 4.0
    masks = geometry.upscale_masks(low, (37, 500), 1024)
    assert masks.shape == (37, 500) and not masks.any()


@pytest.mark.parametrize("lead", [(), (1,), (3,), (2, 3), (2, 1, 2)])
def test_upscale_masks_batch_shapes(lead):
    rng = np.random.default_rng(7)
    n = int(np.prod(lead, dtype=int))
    fields = [_smooth_blobs(s, size=64, frac=0.6) for s in range(n)]
    if n > 1:
        fields[1] = np.full((64, 64), -2.0, np.float32)
        fields[-1] = rng.normal(0, 3, (64, 64)).astype(np.float32)
    low = np.stack(fields).reshape(lead + (64, 64))
    hw = (181, 270)
    masks = geometry.upscale_masks(low, hw, 256)
    assert masks.shape == lead + hw
    _assert_masks_match(masks, geometry.upscale_logits(low, hw, 256))
    for idx in np.ndindex(*lead):
        assert np.array_equal(masks[idx], geometry.upscale_masks(low[idx], hw, 256))


@pytest.mark.parametrize(
    "image, expect",
    [
        (np.full((5, 7), 200, np.uint8), 200),
        (np.full((5, 7, 1), 200, np.uint8), 200),
        (np.full((5, 7, 4), 90, np.uint8), 90),
        (np.full((5, 7), 65535, np.uint16), 255),
        (np.full((5, 7, 3), 257 * 10, np.uint16), 10),
    ],
)
def test_to_rgb_uint8_accepts_line_image_types(image, expect):
    rgb = geometry.to_rgb_uint8(image)
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8
    assert (rgb == expect).all()


@pytest.mark.parametrize(
    "bad, field",
    [(np.zeros((5, 7), np.float64), "dtype"), (np.zeros((5, 7, 2), np.uint8), "shape"), ([[1, 2]], "numpy")],
)
def test_to_rgb_uint8_rejects_bad_images(bad, field):
    with pytest.raises(geometry.GeometryError, match=field):
        geometry.to_rgb_uint8(bad)


def test_prompt_arrays_follow_sam_prompt_encoder_layout():
    hw = (100, 200)
    coords, labels = geometry.build_prompt_arrays(np.array([[10, 20]]), np.array([1]), None, hw, 200)
    assert labels.tolist() == [[1, -1]] and coords.shape == (1, 2, 2)  # padding point appended
    boxes = np.array([[0, 0, 50, 50], [10, 10, 60, 90]])
    coords, labels = geometry.build_prompt_arrays(None, None, boxes, hw, 200)
    assert coords.shape == (2, 2, 2) and labels.tolist() == [[2, 3], [2, 3]]
    coords, labels = geometry.build_prompt_arrays(np.array([[5, 5]]), np.array([0]), boxes, hw, 200)
    assert labels.tolist() == [[0, 2, 3], [0, 2, 3]]  # points first, then corners, per box
    with pytest.raises(geometry.GeometryError, match="points, boxes"):
        geometry.build_prompt_arrays(None, None, None, hw, 200)
    with pytest.raises(geometry.GeometryError, match="point_labels"):
        geometry.build_prompt_arrays(np.array([[1, 2], [3, 4]]), np.array([1]), None, hw, 200)


def test_mask_blocks_of_a_region_hold_every_pixel_of_it_the_whole_mask_has():
    """`region` limits the work to what a caller keeps: inside the region the blocks give the mask exactly."""
    rng = np.random.default_rng(7)
    for trial in range(40):
        low = 64 if trial % 2 else 32
        logits = rng.standard_normal((3, low, low)).astype(np.float32) * (1 + 6 * (trial % 3))  # smooth and ragged
        logits[2] = -30.0  # one map that can never be True
        side = int(rng.integers(20, 900))
        full = geometry.upscale_masks(logits, (side, side), 4 * low)
        y0, x0 = (int(v) for v in rng.integers(0, side, 2))
        y1, x1 = int(rng.integers(y0 + 1, side + 1)), int(rng.integers(x0 + 1, side + 1))
        for i, block in enumerate(geometry.upscale_mask_blocks(logits, (side, side), 4 * low, region=(y0, y1, x0, x1))):
            got = np.zeros((side, side), bool)
            if block is not None:
                (by, bx), values = block
                got[by:by + values.shape[0], bx:bx + values.shape[1]] = values
            assert np.array_equal(got[y0:y1, x0:x1], full[i, y0:y1, x0:x1])
        assert full[:2].any() and not full[2].any()
