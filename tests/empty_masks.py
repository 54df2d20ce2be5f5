"""A model that outputs nothing, for tests that must fail on empty masks.

The mask logits are the hypernetwork vectors dotted with the upscaled embedding: pushing the last
upscaling bias up (every channel ~ +10 after GELU) and each hypernetwork's output bias down (~ -10)
makes every logit ~ -3000, so every mask of every prompt is empty, whatever the image.
"""
from __future__ import annotations


def silence_mask_decoder(model, push: float = 10.0):
    """Make `model` (a Sam, changed in place and returned) answer every prompt with an empty mask."""
    import torch

    decoder = model.mask_decoder
    with torch.no_grad():
        decoder.output_upscaling[3].bias += push
        for mlp in decoder.output_hypernetworks_mlps:
            mlp.layers[-1].bias -= push
    return model
