"""Model registry and checkpoints: `create_model("vit_b", checkpoint=...)`."""
from __future__ import annotations

from pathlib import Path

from edgesam.models.checkpoint import (
    CheckpointError,
    infer_arch,
    load_state_strict,
    read_checkpoint,
    resize_for_image_size,
    save_checkpoint,
)
from edgesam.models.registry import (
    OFFICIAL_CHECKPOINTS,
    OFFICIAL_VARIANTS,
    VARIANTS,
    ArchConfig,
    arch_for,
    build_sam,
    count_parameters,
)

__all__ = [
    "ArchConfig", "CheckpointError", "OFFICIAL_CHECKPOINTS", "OFFICIAL_VARIANTS", "VARIANTS", "arch_for",
    "build_sam", "count_parameters", "create_model", "load_model", "read_checkpoint", "save_checkpoint",
]


def create_model(variant: str | None = None, checkpoint: str | Path | None = None, image_size: int | None = None):
    """Build a SAM; with a checkpoint, load it strictly. Returns the model (eval mode, CPU).

    The architecture comes from the checkpoint where it records one (small, resized, pruned
    models), else from `variant`; naming a variant that contradicts the checkpoint is an error.
    """
    model, _ = load_model(variant, checkpoint, image_size)
    return model


def load_model(variant: str | None = None, checkpoint: str | Path | None = None, image_size: int | None = None):
    """Like `create_model`, but returns `(model, arch)` so callers can record the architecture."""
    if checkpoint is None:
        if variant is None:
            raise ValueError("model: give a variant (--model) or a checkpoint")
        arch = arch_for(variant, image_size)
        return build_sam(arch), arch
    state, recorded = read_checkpoint(checkpoint)
    source = recorded or infer_arch(state, checkpoint)
    if variant is not None and variant != source.variant:
        raise CheckpointError(
            f"{checkpoint}: holds a {source.variant} model (encoder width {source.embed_dim}), not {variant}; "
            f"leave out --model or pass --model {source.variant}"
        )
    arch = source.replace(image_size=image_size) if image_size is not None else source
    model = build_sam(arch)
    if arch.image_size != source.image_size:
        state = resize_for_image_size(state, model)
    load_state_strict(model, state, checkpoint)
    return model, arch
