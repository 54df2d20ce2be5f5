"""Names, dtypes and shapes of the exported graphs: one definition shared by the ONNX exporter, the
runtime and the TensorRT engine builder, so the three can never disagree.

Encoder graph:  image (1, 3, S, S) float32, normalized and padded by `edgesam_runtime.geometry`
                -> image_embeddings (1, C, S/16, S/16) float32. ROI-framed models (`edgesam_runtime.roi`)
                take a batch of crops: image (num_crops, 3, S, S) -> (num_crops, C, S/16, S/16).
Decoder graph:  image_embeddings, point_coords (B, N, 2) and point_labels (B, N) in the resized
                frame (boxes are corner points labelled 2/3, padding -1: see
                `geometry.build_prompt_arrays`), mask_input (B, 1, 4h, 4w), has_mask_input (1,)
                -> low_res_masks (B, 4, 4h, 4w) logits and iou_predictions (B, 4).
                Mask 0 is SAM's single-mask answer, masks 1..3 its multimask answers; the host picks.
                image_embeddings is (1, C, h, w), shared by the B prompt sets, or for ROI-framed
                models (B, C, h, w): each prompt set with the embedding of its own crop ("paired").
Refiner graph (models with a mask refiner, `edgesam.models.refiner`; one fp32 ONNX graph shared by
                every graph set): image (B, 3, S, S), the encoder's input (one per mask: the crop,
                or the image repeated) and low_res_masks (B, 1, 4h, 4w) -> refined_masks (B, 1, G, G)
                logits on the refiner's grid (G = S / stride).
The decoder ends at low-res logits: no data-dependent shape ops, so TensorRT can build it with
profiles over B and N; upscaling to the original image happens on the host.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUM_MASK_OUTPUTS = 4  # SAM's mask tokens: index 0 single-mask, 1..3 multimask
PATCH_SIZE = 16


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name
    shape: tuple  # ints, or axis names for dynamic axes


# Tensor names: every graph, exporter, backend and check spells them through these constants.
IMAGE = "image"
IMAGE_EMBEDDINGS = "image_embeddings"
POINT_COORDS = "point_coords"
POINT_LABELS = "point_labels"
MASK_INPUT = "mask_input"
HAS_MASK_INPUT = "has_mask_input"
LOW_RES_MASKS = "low_res_masks"
IOU_PREDICTIONS = "iou_predictions"
REFINED_MASKS = "refined_masks"
ORIG_IM_SIZE = "orig_im_size"  # official decoder only
MASKS = "masks"  # official decoder only: masks upscaled to orig_im_size

# Names of the dynamic axes (also the keys of a bundle's shape limits).
NUM_PROMPTS = "num_prompts"
NUM_POINTS = "num_points"
NUM_CROPS = "num_crops"
NUM_MASKS = "num_masks"

ENCODER_INPUT = IMAGE
ENCODER_OUTPUT = IMAGE_EMBEDDINGS
DECODER_INPUTS = (IMAGE_EMBEDDINGS, POINT_COORDS, POINT_LABELS, MASK_INPUT, HAS_MASK_INPUT)
DECODER_OUTPUTS = (LOW_RES_MASKS, IOU_PREDICTIONS)

# Dynamic axes of the decoder: B prompt sets per call, N points per set.
DECODER_DYNAMIC_AXES = {
    POINT_COORDS: {0: NUM_PROMPTS, 1: NUM_POINTS},
    POINT_LABELS: {0: NUM_PROMPTS, 1: NUM_POINTS},
    MASK_INPUT: {0: NUM_PROMPTS},
    LOW_RES_MASKS: {0: NUM_PROMPTS},
    IOU_PREDICTIONS: {0: NUM_PROMPTS},
}
# ROI-framed models: the encoder takes a batch of crops, the decoder one embedding per prompt set.
ENCODER_BATCH_AXES = {ENCODER_INPUT: {0: NUM_CROPS}, ENCODER_OUTPUT: {0: NUM_CROPS}}
PAIRED_DECODER_DYNAMIC_AXES = {**DECODER_DYNAMIC_AXES, IMAGE_EMBEDDINGS: {0: NUM_PROMPTS}}


def encoder_dynamic_axes(roi: bool) -> dict | None:
    return ENCODER_BATCH_AXES if roi else None


def decoder_dynamic_axes(roi: bool) -> dict:
    return PAIRED_DECODER_DYNAMIC_AXES if roi else DECODER_DYNAMIC_AXES


def embedding_size(image_size: int) -> int:
    return image_size // PATCH_SIZE


def low_res_size(image_size: int) -> int:
    return 4 * embedding_size(image_size)


def encoder_specs(image_size: int, embed_dim: int = 256, roi: bool = False) -> tuple[list[TensorSpec], list[TensorSpec]]:
    e = embedding_size(image_size)
    batch = NUM_CROPS if roi else 1
    return (
        [TensorSpec(ENCODER_INPUT, "float32", (batch, 3, image_size, image_size))],
        [TensorSpec(ENCODER_OUTPUT, "float32", (batch, embed_dim, e, e))],
    )


def decoder_specs(image_size: int, embed_dim: int = 256, roi: bool = False) -> tuple[list[TensorSpec], list[TensorSpec]]:
    e, m = embedding_size(image_size), low_res_size(image_size)
    inputs = [
        TensorSpec(IMAGE_EMBEDDINGS, "float32", (NUM_PROMPTS if roi else 1, embed_dim, e, e)),
        TensorSpec(POINT_COORDS, "float32", (NUM_PROMPTS, NUM_POINTS, 2)),
        TensorSpec(POINT_LABELS, "float32", (NUM_PROMPTS, NUM_POINTS)),
        TensorSpec(MASK_INPUT, "float32", (NUM_PROMPTS, 1, m, m)),
        TensorSpec(HAS_MASK_INPUT, "float32", (1,)),
    ]
    outputs = [
        TensorSpec(LOW_RES_MASKS, "float32", (NUM_PROMPTS, NUM_MASK_OUTPUTS, m, m)),
        TensorSpec(IOU_PREDICTIONS, "float32", (NUM_PROMPTS, NUM_MASK_OUTPUTS)),
    ]
    return inputs, outputs


def decoder_feeds(embeddings, coords, labels, mask_input=None) -> dict:
    """The decoder's feeds for B prompt sets: an absent mask prompt is zeros with has_mask_input 0.
    Arrays pass as given; callers cast them to the graph's dtypes."""
    m = low_res_size(embeddings.shape[-1] * PATCH_SIZE)
    has_mask = mask_input is not None
    return {
        IMAGE_EMBEDDINGS: embeddings,
        POINT_COORDS: coords,
        POINT_LABELS: labels,
        MASK_INPUT: mask_input if has_mask else np.zeros((coords.shape[0], 1, m, m), np.float32),
        HAS_MASK_INPUT: np.array([1.0 if has_mask else 0.0], np.float32),
    }


REFINER_INPUTS = (IMAGE, LOW_RES_MASKS)
REFINER_OUTPUT = REFINED_MASKS
REFINER_DYNAMIC_AXES = {IMAGE: {0: NUM_MASKS}, LOW_RES_MASKS: {0: NUM_MASKS}, REFINER_OUTPUT: {0: NUM_MASKS}}


def refiner_specs(image_size: int, grid: int) -> tuple[list[TensorSpec], list[TensorSpec]]:
    m = low_res_size(image_size)
    return (
        [TensorSpec(IMAGE, "float32", (NUM_MASKS, 3, image_size, image_size)),
         TensorSpec(LOW_RES_MASKS, "float32", (NUM_MASKS, 1, m, m))],
        [TensorSpec(REFINER_OUTPUT, "float32", (NUM_MASKS, 1, grid, grid))],
    )


# Official segment-anything decoder ONNX interface (`--decoder-style official`), for tools that consume it.
OFFICIAL_DECODER_INPUTS = (*DECODER_INPUTS, ORIG_IM_SIZE)
OFFICIAL_DECODER_OUTPUTS = (MASKS, IOU_PREDICTIONS, LOW_RES_MASKS)
OFFICIAL_DECODER_DYNAMIC_AXES = {POINT_COORDS: {1: NUM_POINTS}, POINT_LABELS: {1: NUM_POINTS}}
