"""The torch fast path (bf16 encoder, SDPA attention) against the fp32 eager reference."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edgesam_runtime import geometry
from edgesam.bench.fast_path import FastPathConfig, TorchFastPath
from edgesam.eval import mask_agreement
from edgesam.models import create_model
from edgesam.reference.predictor import SamReferencePredictor
from tests.tolerances import FAST_PATH_BF16_MASK_IOU_MIN, FAST_PATH_FP32_LOGITS_ATOL

BOXES = np.array([[5, 5, 60, 50], [30, 10, 90, 70], [0, 0, 96, 80]], np.float32)


def _image():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:80, :96]
    return np.clip(90 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + rng.normal(0, 10, (80, 96)), 0, 255).astype(np.uint8)


def _masks(predictor, features, hw, size):
    coords, labels = geometry.build_prompt_arrays(None, None, BOXES, hw, size)
    with torch.inference_mode():
        predictor.set_embedding(features, hw)
        low_res, _ = predictor.decode(coords, labels, None)
    return low_res[:, 0], geometry.upscale_masks(low_res[:, 0], hw, size)


def _compare(config: FastPathConfig, device: str):
    torch.manual_seed(0)
    model = create_model("vit_t", image_size=64).eval()
    x, hw, _ = geometry.preprocess(_image(), 64)
    ref = SamReferencePredictor(model)
    with torch.inference_mode():
        ref_feat = model.image_encoder(torch.from_numpy(x))
    fast = TorchFastPath(model, config, device)
    assert next(fast.model.image_encoder.parameters()).dtype == getattr(torch, config.dtype)
    assert next(model.image_encoder.parameters()).dtype == torch.float32  # the caller's model is untouched
    return _masks(ref, ref_feat, hw, 64), _masks(fast, fast.encode_array(x), hw, 64)


def _assert_iou_at_least(masks, ref_masks, floor):
    agreement = mask_agreement(masks, ref_masks)
    assert agreement.to_dict()["reference_empty"] == 0  # an IoU against empty references would prove nothing
    assert agreement.mean_iou >= floor


def test_fast_path_fp32_with_sdpa_equals_reference():
    (ref_logits, ref_masks), (logits, masks) = _compare(FastPathConfig(dtype="float32"), "cpu")
    assert np.abs(ref_logits - logits).max() <= FAST_PATH_FP32_LOGITS_ATOL


def test_fast_path_bf16_masks_match_reference_on_cpu():
    (ref_logits, ref_masks), (logits, masks) = _compare(FastPathConfig(dtype="bfloat16"), "cpu")
    assert np.abs(ref_logits - logits).max() > 0  # really ran in bf16
    _assert_iou_at_least(masks, ref_masks, FAST_PATH_BF16_MASK_IOU_MIN)


@pytest.mark.gpu
def test_fast_path_bf16_on_gpu():
    (_, ref_masks), (_, masks) = _compare(FastPathConfig(dtype="bfloat16"), "cuda")
    _assert_iou_at_least(masks, ref_masks, FAST_PATH_BF16_MASK_IOU_MIN)
