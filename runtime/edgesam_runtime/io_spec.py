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

NUM_MASK_OUTPUTS = 4  # SAM's mask tokens: index 0 single-mask, 1..3 multimask
PATCH_SIZE = 16


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name
    shape: tuple  # ints, or axis names for dynamic axes


ENCODER_INPUT = "image"
ENCODER_OUTPUT = "image_embeddings"
DECODER_INPUTS = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input")
DECODER_OUTPUTS = ("low_res_masks", "iou_predictions")

# Dynamic axes of the decoder: B prompt sets per call, N points per set.
DECODER_DYNAMIC_AXES = {
    "point_coords": {0: "num_prompts", 1: "num_points"},
    "point_labels": {0: "num_prompts", 1: "num_points"},
    "mask_input": {0: "num_prompts"},
    "low_res_masks": {0: "num_prompts"},
    "iou_predictions": {0: "num_prompts"},
}
# ROI-framed models: the encoder takes a batch of crops, the decoder one embedding per prompt set.
ENCODER_BATCH_AXES = {ENCODER_INPUT: {0: "num_crops"}, ENCODER_OUTPUT: {0: "num_crops"}}
PAIRED_DECODER_DYNAMIC_AXES = {**DECODER_DYNAMIC_AXES, "image_embeddings": {0: "num_prompts"}}


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
    batch = "num_crops" if roi else 1
    return (
        [TensorSpec(ENCODER_INPUT, "float32", (batch, 3, image_size, image_size))],
        [TensorSpec(ENCODER_OUTPUT, "float32", (batch, embed_dim, e, e))],
    )


def decoder_specs(image_size: int, embed_dim: int = 256, roi: bool = False) -> tuple[list[TensorSpec], list[TensorSpec]]:
    e, m = embedding_size(image_size), low_res_size(image_size)
    inputs = [
        TensorSpec("image_embeddings", "float32", ("num_prompts" if roi else 1, embed_dim, e, e)),
        TensorSpec("point_coords", "float32", ("num_prompts", "num_points", 2)),
        TensorSpec("point_labels", "float32", ("num_prompts", "num_points")),
        TensorSpec("mask_input", "float32", ("num_prompts", 1, m, m)),
        TensorSpec("has_mask_input", "float32", (1,)),
    ]
    outputs = [
        TensorSpec("low_res_masks", "float32", ("num_prompts", NUM_MASK_OUTPUTS, m, m)),
        TensorSpec("iou_predictions", "float32", ("num_prompts", NUM_MASK_OUTPUTS)),
    ]
    return inputs, outputs


REFINER_INPUTS = ("image", "low_res_masks")
REFINER_OUTPUT = "refined_masks"
REFINER_DYNAMIC_AXES = {"image": {0: "num_masks"}, "low_res_masks": {0: "num_masks"}, REFINER_OUTPUT: {0: "num_masks"}}


def refiner_specs(image_size: int, grid: int) -> tuple[list[TensorSpec], list[TensorSpec]]:
    m = low_res_size(image_size)
    return (
        [TensorSpec("image", "float32", ("num_masks", 3, image_size, image_size)),
         TensorSpec("low_res_masks", "float32", ("num_masks", 1, m, m))],
        [TensorSpec(REFINER_OUTPUT, "float32", ("num_masks", 1, grid, grid))],
    )


# Official segment-anything decoder ONNX interface (`--decoder-style official`), for tools that consume it.
OFFICIAL_DECODER_INPUTS = (
    "image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size",
)
OFFICIAL_DECODER_OUTPUTS = ("masks", "iou_predictions", "low_res_masks")
