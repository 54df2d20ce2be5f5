"""Export wrappers: the graphs of a bundle as plain modules with no control flow.

Shapes are fixed but for the prompt axes B (prompt sets) and N (points per set); tensor names and
axes come from `edgesam_runtime.io_spec`. The decoder ends at low-res logits (no data-dependent shape ops),
so the same graph serves ONNX Runtime and TensorRT.
"""
from __future__ import annotations

import contextlib
import types

import torch
import torch.nn.functional as F
from torch import nn

from edgesam.models.decode import embed_points


class EncoderGraph(nn.Module):
    """image (1, 3, S, S), already normalized and padded -> image_embeddings (1, 256, S/16, S/16)."""

    def __init__(self, model):
        super().__init__()
        self.image_encoder = model.image_encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(image)


@contextlib.contextmanager
def token_norms_flattened(module: nn.Module):
    """While exporting: every `nn.LayerNorm` of `module` over the last axis of a (B, H, W, C) tensor
    normalises it as (B, H*W, C) instead. Same numbers; OpenVINO fuses a LayerNorm over a 3-D tensor into one
    MVN kernel but splits one over a 4-D tensor into ReduceMean / Subtract / RMS nodes: the ROI encoder runs
    1.18x faster in bf16 (benchmarks/cpu_backends/results/layernorm_fusion.md; ONNX Runtime unchanged). The
    modules are restored afterwards."""
    norms = [m for m in module.modules() if isinstance(m, nn.LayerNorm) and len(m.normalized_shape) == 1]
    for norm in norms:
        norm.forward = types.MethodType(_flat_layer_norm, norm)
    try:
        yield module
    finally:
        for norm in norms:
            del norm.forward


def _flat_layer_norm(self: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    if x.dim() <= 3:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
    y = F.layer_norm(x.flatten(1, -2), self.normalized_shape, self.weight, self.bias, self.eps)
    return y.view_as(x)


class DecoderGraph(nn.Module):
    """Prompt encoder + mask decoder over SAM's unified point encoding -> all 4 outputs.

    The dense prompt is a blend, not a branch: has_mask_input (1,) is 1.0 to use mask_input (the
    low-res logits of an earlier call) and 0.0 for SAM's learned no-mask embedding.
    """

    def __init__(self, model):
        super().__init__()
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder

    def prompt_embeddings(self, point_coords, point_labels, mask_input, has_mask_input):
        """(sparse, dense) prompt embeddings; the dense one blends mask prompt and no-mask embedding."""
        pe = self.prompt_encoder
        sparse = embed_points(pe, point_coords, point_labels)
        no_mask = pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        return sparse, has_mask_input * pe.mask_downscaling(mask_input) + (1 - has_mask_input) * no_mask

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        sparse, dense = self.prompt_embeddings(point_coords, point_labels, mask_input, has_mask_input)
        low_res_masks, iou_predictions = self.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )
        return low_res_masks, iou_predictions


class PairedDecoderGraph(DecoderGraph):
    """The decoder of a ROI-framed model: image_embeddings (B, C, h, w), one per prompt set (its crop).

    `MaskDecoder.predict_masks` repeats one embedding per prompt set and adds the dense prompt; a zero
    embedding plus the per-prompt embeddings inside the dense term gives it exactly that input.
    """

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        sparse, dense = self.prompt_embeddings(point_coords, point_labels, mask_input, has_mask_input)
        low_res_masks, iou_predictions = self.mask_decoder.predict_masks(
            image_embeddings=torch.zeros_like(image_embeddings[:1]),
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=image_embeddings + dense,
        )
        return low_res_masks, iou_predictions


class RefinerGraph(nn.Module):
    """image (B, 3, S, S) + low_res_masks (B, 1, S/4, S/4) -> refined_masks (B, 1, G, G): the mask refiner.

    The refiner's bilinear upsampling of the logits is exported as a fixed 3x3 convolution on the
    low-res grid, added to the residual before the pixel shuffle: the same numbers (half-pixel
    bilinear with edge clamping is an edge-padded convolution per output phase), and OpenVINO runs
    it as one more small convolution instead of an Interpolate node (8 masks of 128 px in bf16: 2.08 ->
    1.44 ms; benchmarks/cpu_backends/results/ov_static_shapes.md).
    """

    def __init__(self, model):
        super().__init__()
        self.refiner = model.mask_refiner
        self.register_buffer("upsample", bilinear_phase_kernels(self.refiner.out_scale), persistent=False)

    def forward(self, image: torch.Tensor, low_res_masks: torch.Tensor) -> torch.Tensor:
        refiner = self.refiner
        if image.shape[0] == 1 and low_res_masks.shape[0] > 1:  # whole-image framing: one image, many masks
            image = image.expand(low_res_masks.shape[0], -1, -1, -1)
        x = torch.cat([F.pixel_unshuffle(image, 4), low_res_masks], dim=1)
        coarse = F.conv2d(F.pad(low_res_masks, (1, 1, 1, 1), mode="replicate"), self.upsample)
        return F.pixel_shuffle(refiner.head(refiner.body(x)) + coarse, refiner.out_scale)


def bilinear_phase_kernels(scale: int) -> torch.Tensor:
    """(scale^2, 1, 3, 3): output channel i*scale + j holds the weights that bilinear upsampling by
    `scale` (half-pixel centres, as F.interpolate with align_corners=False) gives the 3x3 neighbours of
    a low-res cell for its output pixel (i, j); pixel_shuffle then puts each channel at its phase."""
    taps = []
    for phase in range(scale):
        offset = (phase + 0.5) / scale - 0.5  # where the output pixel falls, in low-res cells from the centre
        taps.append([-offset, 1 + offset, 0.0] if offset < 0 else [0.0, 1 - offset, offset])
    taps = torch.tensor(taps, dtype=torch.float32)
    return torch.einsum("iy,jx->ijyx", taps, taps).reshape(scale * scale, 1, 3, 3)
