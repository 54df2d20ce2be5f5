"""Runtime (ONNX Runtime, fp32 bundle) against the PyTorch reference predictor on the same weights."""
from __future__ import annotations

import numpy as np
import pytest

from edgesam_runtime import geometry
from tests.tolerances import RUNTIME_LOGITS_ATOL


@pytest.fixture(scope="module")
def reference(tiny_model):
    from edgesam.reference.predictor import SamReferencePredictor

    return SamReferencePredictor(tiny_model)


def assert_matches(result, pred, original_hw, image_size):
    assert result.masks.shape == pred.masks.shape
    assert pred.masks.any()  # the masks compared below hold pixels (equal empty masks would prove little)
    np.testing.assert_allclose(result.scores, pred.scores, atol=RUNTIME_LOGITS_ATOL)
    assert np.abs(result.low_res_logits - pred.low_res_logits).max() <= RUNTIME_LOGITS_ATOL
    # Masks equal but for boundary pixels: a pixel may flip only where the reference logit lies
    # within the logit tolerance of the threshold (upscaling is a convex combination of low-res cells).
    differ = result.masks != pred.masks
    if differ.any():
        ref_logits = geometry.upscale_logits(pred.low_res_logits, original_hw, image_size)
        assert np.abs(ref_logits[differ]).max() <= RUNTIME_LOGITS_ATOL


CASES = {
    "gray_boxes": dict(image=dict(), prompt=dict(boxes=[[10, 10, 80, 60], [40, 20, 130, 85], [0, 0, 140, 90]])),
    "rgb_points": dict(image=dict(channels=3), prompt=dict(points=[[84, 36], [20, 70]], labels=[1, 0])),
    "rgba_u16_point_box": dict(image=dict(channels=4, dtype=np.uint16), prompt=dict(points=[[84, 36]], labels=[1], boxes=[[50, 10, 120, 70]])),
    "tall_multimask": dict(image=dict(height=150, width=60), prompt=dict(points=[[30, 60]], labels=[1]), multimask=True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_runtime_matches_torch_predictor(case, segmenter, reference, make_image):
    spec = CASES[case]
    image = make_image(**spec["image"])
    prompt = spec["prompt"]
    multimask = spec.get("multimask", False)
    emb = segmenter.encode(image)
    result = segmenter.segment(emb, **prompt, multimask=multimask)
    reference.set_image(image)
    pred = reference.predict(prompt.get("points"), prompt.get("labels"), prompt.get("boxes"), multimask=multimask)
    assert result.masks.shape[:2] == (len(prompt.get("boxes", [[0]])), 3 if multimask else 1)
    assert result.masks.shape[2:] == image.shape[:2]
    assert_matches(result, pred, image.shape[:2], segmenter.image_size)


def test_mask_input_and_batched_point_sets_match(segmenter, reference, make_image):
    image = make_image(seed=3)
    emb = segmenter.encode(image)
    first = segmenter.segment(emb, boxes=[[10, 10, 80, 60], [40, 20, 130, 85]])
    points = np.array([[[30, 30]], [[90, 50]]], np.float32)
    labels = np.ones((2, 1), np.float32)
    result = segmenter.segment(emb, points=points, labels=labels, mask_input=first.low_res_logits)
    reference.set_image(image)
    pred = reference.predict(points, labels, mask_input=first.low_res_logits)
    assert_matches(result, pred, image.shape[:2], segmenter.image_size)
    # the mask prompt reaches the graph: without it the answer differs
    plain = segmenter.segment(emb, points=points, labels=labels)
    assert np.abs(plain.low_res_logits - result.low_res_logits).max() > 10 * RUNTIME_LOGITS_ATOL


def test_segment_image_prompt_file_equals_segment(segmenter, tmp_path, make_image):
    image = make_image(seed=5)
    prompts = [{"type": "point", "data": [84, 36], "label": 1}, {"type": "box", "data": [50, 10, 120, 70]}]
    path = tmp_path / "prompts.json"
    import json

    path.write_text(json.dumps(prompts))
    one_shot = segmenter.segment_image(image, path)
    direct = segmenter.segment(segmenter.encode(image), points=[[84, 36]], labels=[1], boxes=[[50, 10, 120, 70]])
    np.testing.assert_array_equal(one_shot.masks, direct.masks)
    np.testing.assert_array_equal(one_shot.low_res_logits, direct.low_res_logits)
    assert set(one_shot.timings) == {"prompt_ms", "decoder_ms", "postprocess_ms"}
