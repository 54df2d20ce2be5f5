"""Prompt embedding over SAM's unified point encoding, shared by the predictor and the export wrapper.

Labels: 1 positive point, 0 negative point, 2/3 box corners, -1 padding. This equals
`PromptEncoder.forward` on the same prompts (points first, then box corners; a padding point when
there is no box, which `geometry.build_prompt_arrays` has already added), without its
data-dependent branches, so the same function exports cleanly.
"""
from __future__ import annotations

import torch


def embed_points(prompt_encoder, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, N, 2) coords in the resized frame + (B, N) labels -> (B, N, C) sparse embeddings."""
    pe = prompt_encoder.pe_layer.forward_with_coords(coords + 0.5, prompt_encoder.input_image_size)
    labels = labels.unsqueeze(-1)
    pe = pe * (labels != -1).to(pe.dtype)
    pe = pe + prompt_encoder.not_a_point_embed.weight * (labels == -1).to(pe.dtype)
    for i, emb in enumerate(prompt_encoder.point_embeddings):
        pe = pe + emb.weight * (labels == i).to(pe.dtype)
    return pe


def embed_dense(prompt_encoder, batch: int, mask_input: torch.Tensor | None) -> torch.Tensor:
    """(B, C, h, w) dense embeddings: the low-res mask prompt, or the learned no-mask embedding."""
    if mask_input is not None:
        return prompt_encoder.mask_downscaling(mask_input)
    h, w = prompt_encoder.image_embedding_size
    return prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, h, w)


def decode_all(model, features: torch.Tensor, coords: torch.Tensor, labels: torch.Tensor, mask_input=None):
    """Run prompt encoder + mask decoder; return all 4 outputs (single-mask token first) and IoUs.

    `MaskDecoder.forward` slices these; `predict_masks` gives every output so the host can choose.
    """
    sparse = embed_points(model.prompt_encoder, coords, labels)
    dense = embed_dense(model.prompt_encoder, coords.shape[0], mask_input)
    return model.mask_decoder.predict_masks(
        image_embeddings=features,
        image_pe=model.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
    )
