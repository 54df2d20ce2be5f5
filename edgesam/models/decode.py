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

    `features` is one image's embedding (1, C, h, w), shared by the B prompt sets, or one embedding
    per prompt set (B, C, h, w), as ROI framing gives (a crop per box). `MaskDecoder.forward` slices
    the outputs; `predict_masks` gives every output so the host can choose.
    """
    batch = coords.shape[0]
    sparse = embed_points(model.prompt_encoder, coords, labels)
    dense = embed_dense(model.prompt_encoder, batch, mask_input)
    image_embeddings = features
    if features.shape[0] != 1:
        if features.shape[0] != batch:
            raise ValueError(f"decode_all: {features.shape[0]} image embeddings for {batch} prompt sets "
                             "(expected 1, shared, or one per prompt set)")
        # predict_masks repeats one embedding per prompt set and adds the dense prompt; handing it a
        # zero embedding and the per-prompt embeddings inside the dense term computes exactly the same
        # transformer input (x + 0 is exact) without copying the decoder's code.
        image_embeddings = torch.zeros_like(features[:1])
        dense = features + dense
    return model.mask_decoder.predict_masks(
        image_embeddings=image_embeddings,
        image_pe=model.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
    )
