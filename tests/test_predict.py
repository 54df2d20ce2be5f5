"""The reference predictor against segment_anything.SamPredictor on the same weights."""
import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from edgesam.models import create_model
from edgesam.reference.predictor import SamReferencePredictor
from tests.tolerances import PREDICTOR_LOGITS_ATOL, PREDICTOR_MASK_MAX_DIFF_FRACTION


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("vit_t", image_size=256)


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 60, (180, 300, 3), dtype=np.uint8)
    img[40:120, 60:200] += 150  # a bright object so masks are not trivially empty
    return img


@pytest.fixture(scope="module")
def pair(model, image):
    ref, ours = SamPredictor(model), SamReferencePredictor(model)
    ref.set_image(image)
    ours.set_image(image)
    return ref, ours


def _assert_same(ref_out, ours, index=0):
    masks, scores, logits = ref_out
    np.testing.assert_allclose(ours.low_res_logits[index], logits, atol=PREDICTOR_LOGITS_ATOL, rtol=0)
    np.testing.assert_allclose(ours.scores[index], scores, atol=PREDICTOR_LOGITS_ATOL, rtol=0)
    assert masks.any()  # the masks compared below hold pixels
    assert (ours.masks[index] != masks).mean() <= PREDICTOR_MASK_MAX_DIFF_FRACTION


def test_box_prompt_matches_sam_predictor(pair):
    ref, ours = pair
    box = np.array([55, 35, 205, 125], np.float32)
    _assert_same(ref.predict(box=box, multimask_output=False), ours.predict(boxes=box))


@pytest.mark.parametrize("multimask", [False, True])
def test_points_match_sam_predictor(pair, multimask):
    ref, ours = pair
    pts, labels = np.array([[100, 80], [20, 20]], np.float32), np.array([1, 0])
    out = ours.predict(pts, labels, multimask=multimask)
    assert out.masks.shape == (1, 3 if multimask else 1, 180, 300)
    _assert_same(ref.predict(pts, labels, multimask_output=multimask), out)


def test_points_and_box_with_mask_input_match(pair):
    ref, ours = pair
    pts, labels, box = np.array([[100, 80]]), np.array([1]), np.array([55, 35, 205, 125])
    first = ours.predict(pts, labels, boxes=box)
    ref_out = ref.predict(pts, labels, box=box, mask_input=first.low_res_logits[0], multimask_output=False)
    _assert_same(ref_out, ours.predict(pts, labels, boxes=box, mask_input=first.low_res_logits))


def test_many_boxes_in_one_call_equal_single_calls(pair):
    _, ours = pair
    boxes = np.array([[55, 35, 205, 125], [0, 0, 100, 100], [150, 90, 299, 179]], np.float32)
    batched = ours.predict(boxes=boxes)
    assert batched.masks.shape == (3, 1, 180, 300)
    for i, box in enumerate(boxes):
        single = ours.predict(boxes=box)
        np.testing.assert_allclose(batched.low_res_logits[i], single.low_res_logits[0], atol=PREDICTOR_LOGITS_ATOL)


@pytest.mark.parametrize("convert", [
    lambda im: im[:, :, 0],  # grayscale
    lambda im: np.dstack([im, np.full(im.shape[:2], 255, np.uint8)]),  # RGBA
    lambda im: im[:, :, 0].astype(np.uint16) * 257,  # 16-bit grayscale, same content
])
def test_odd_image_types_give_the_gray_rgb_answer(model, image, convert):
    gray_rgb = np.repeat(image[:, :, :1], 3, axis=2)
    ref = SamReferencePredictor(model)
    ref.set_image(gray_rgb if convert(image).ndim == 2 else image)
    ours = SamReferencePredictor(model)
    ours.set_image(convert(image))
    box = np.array([55, 35, 205, 125])
    np.testing.assert_allclose(ours.predict(boxes=box).low_res_logits, ref.predict(boxes=box).low_res_logits,
                               atol=PREDICTOR_LOGITS_ATOL)


def test_predict_before_set_image_is_a_clear_error(model):
    with pytest.raises(RuntimeError, match="set_image"):
        SamReferencePredictor(model).predict(boxes=np.array([0, 0, 5, 5]))
