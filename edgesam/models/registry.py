"""One builder for every SAM variant, from an `ArchConfig`.

Official variants (vit_b, vit_l, vit_h) are built from segment-anything's own modules with the
official hyper-parameters, so official checkpoints load with strict key matching. `vit_t` is a small
variant for tests and CPU demos, `vit_n` a smaller one that only distillation trains. Any variant can be built at another `image_size` (fast edge models),
and a pruned model is the same modules with smaller Linear layers (`block_heads`, `block_mlp_dims`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial

import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from edgesam_runtime import schema
from edgesam_runtime.geometry import PIXEL_MEAN, PIXEL_STD
from edgesam.models.refiner import attach_refiner
from edgesam_runtime.roi import framing_of, refine_spec_of

OFFICIAL_VARIANTS = ("vit_b", "vit_l", "vit_h")
OFFICIAL_IMAGE_SIZE = 1024
OFFICIAL_CHECKPOINTS = {
    "vit_b": "sam_vit_b_01ec64.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_h": "sam_vit_h_4b8939.pth",
}


@dataclass(frozen=True)
class ArchConfig:
    """Everything needed to rebuild a model's modules; recorded with non-official checkpoints."""

    variant: str
    embed_dim: int
    depth: int
    num_heads: int
    global_attn_indexes: tuple[int, ...]
    image_size: int = OFFICIAL_IMAGE_SIZE
    window_size: int = 14
    patch_size: int = 16
    prompt_embed_dim: int = 256
    mlp_ratio: float = 4.0
    block_heads: tuple[int, ...] | None = None  # per-block heads after pruning
    block_mlp_dims: tuple[int, ...] | None = None  # per-block MLP hidden width after pruning
    # Not shapes: provenance ({"init": "random"}) and how the model frames its input ({"framing": ...},
    # see edgesam_runtime.roi), recorded with the checkpoint so every stage uses the model as it was trained.
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if not isinstance(self.image_size, int) or isinstance(self.image_size, bool) or not 16 <= self.image_size <= 4096:
            raise ValueError(f"image_size: expected an integer from 16 to 4096 (a multiple of {self.patch_size}), "
                             f"got {self.image_size!r}")
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size: expected a multiple of {self.patch_size}, got {self.image_size}")
        for name in ("block_heads", "block_mlp_dims"):
            value = getattr(self, name)
            if value is not None and len(value) != self.depth:
                raise ValueError(f"{name}: expected {self.depth} entries (one per block), got {len(value)}")

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def mlp_dim(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    def heads(self, block: int) -> int:
        return self.block_heads[block] if self.block_heads else self.num_heads

    def mlp_width(self, block: int) -> int:
        return self.block_mlp_dims[block] if self.block_mlp_dims else self.mlp_dim

    @property
    def is_pruned(self) -> bool:
        return any(self.heads(i) != self.num_heads or self.mlp_width(i) != self.mlp_dim for i in range(self.depth))

    @property
    def is_official_shape(self) -> bool:
        """True when segment-anything's own builder makes exactly these shapes."""
        base = VARIANTS.get(self.variant)
        return (
            self.variant in OFFICIAL_VARIANTS
            and self.image_size == OFFICIAL_IMAGE_SIZE
            and not self.is_pruned
            and base is not None
            and (self.depth, self.embed_dim, self.global_attn_indexes) == (base.depth, base.embed_dim, base.global_attn_indexes)
        )

    @property
    def is_stock_loadable(self) -> bool:
        """Official shapes used as SAM uses them (whole image, no refiner): the plain state dict says it all."""
        return self.is_official_shape and framing_of(self).is_default and refine_spec_of(self) is None

    def replace(self, **changes) -> "ArchConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["global_attn_indexes"] = list(self.global_attn_indexes)
        for key in ("block_heads", "block_mlp_dims"):
            d[key] = list(d[key]) if d[key] is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "arch", error: type[Exception] = ValueError) -> "ArchConfig":
        """A recorded architecture, checked against `runtime/edgesam_runtime/schemas/arch.schema.json` first (types and
        ranges: an `image_size` of "abc" or 131072 is refused here, not at allocation)."""
        schema.check(d, "arch", where, error)
        d = dict(d)
        d["global_attn_indexes"] = tuple(d["global_attn_indexes"])
        for key in ("block_heads", "block_mlp_dims"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)


VARIANTS: dict[str, ArchConfig] = {
    "vit_b": ArchConfig("vit_b", 768, 12, 12, (2, 5, 8, 11)),
    "vit_l": ArchConfig("vit_l", 1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": ArchConfig("vit_h", 1280, 32, 16, (7, 15, 23, 31)),
    # Small variant for tests and CPU demos: 8x8 windows suit its default 256 px input (16x16 tokens).
    "vit_t": ArchConfig("vit_t", 192, 6, 3, (2, 5), image_size=256, window_size=8),
    # Distillation student for line PCs (`edgesam distill`): about 2.4x fewer encoder FLOPs than vit_t at
    # the same input (its neck, fixed by the 256-channel decoder, is then over a third of the cost).
    # Trained only by distillation: it has no official or pretrained weights.
    "vit_n": ArchConfig("vit_n", 128, 4, 2, (1, 3), image_size=256, window_size=8, mlp_ratio=2.0),
}


def arch_for(variant: str, image_size: int | None = None) -> ArchConfig:
    """The registered architecture of `variant`, optionally at another input size."""
    if variant not in VARIANTS:
        raise ValueError(f"model: unknown variant {variant!r}; expected one of {sorted(VARIANTS)}")
    arch = VARIANTS[variant]
    return arch.replace(image_size=image_size) if image_size is not None else arch


def build_sam(arch: ArchConfig) -> Sam:
    """Build an (untrained) SAM with exactly the shapes `arch` describes, in eval mode.

    The model carries its input framing as `model.framing` (edgesam_runtime.roi), so the predictor and the
    exporter use it as it was trained without being told; a recorded refiner (edgesam.models.refiner)
    becomes `model.mask_refiner`.
    """
    embed = arch.image_size // arch.patch_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            depth=arch.depth,
            embed_dim=arch.embed_dim,
            img_size=arch.image_size,
            mlp_ratio=arch.mlp_ratio,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=arch.num_heads,
            patch_size=arch.patch_size,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=list(arch.global_attn_indexes),
            window_size=arch.window_size,
            out_chans=arch.prompt_embed_dim,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=arch.prompt_embed_dim,
            image_embedding_size=(embed, embed),
            input_image_size=(arch.image_size, arch.image_size),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=arch.prompt_embed_dim, mlp_dim=2048, num_heads=8),
            transformer_dim=arch.prompt_embed_dim,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
        pixel_mean=list(PIXEL_MEAN),
        pixel_std=list(PIXEL_STD),
    )
    if arch.is_pruned:
        shrink_blocks(sam, arch)
    spec = refine_spec_of(arch)
    if spec is not None:
        attach_refiner(sam, spec)
    sam.framing = framing_of(arch)
    return sam.eval()


def shrink_blocks(sam: Sam, arch: ArchConfig) -> None:
    """Give each encoder block the head count and MLP width that `arch` records.

    The official Attention infers head_dim from the qkv output (`reshape(..., num_heads, -1)`), so
    smaller Linear layers plus a new `num_heads` give a real smaller model under the same names.
    """
    for i, block in enumerate(sam.image_encoder.blocks):
        heads, width = arch.heads(i), arch.mlp_width(i)
        if heads < 1 or width < 1:
            raise ValueError(f"arch: block {i} needs at least one head and one MLP channel")
        attn = block.attn
        inner = heads * arch.head_dim
        attn.qkv = torch.nn.Linear(arch.embed_dim, 3 * inner, bias=True)
        attn.proj = torch.nn.Linear(inner, arch.embed_dim)
        attn.num_heads = heads
        block.mlp.lin1 = torch.nn.Linear(arch.embed_dim, width)
        block.mlp.lin2 = torch.nn.Linear(width, arch.embed_dim)


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def variant_table() -> list[dict]:
    """Each registered variant with its parameter counts (built on the meta device: no memory cost)."""
    rows = []
    for name, arch in VARIANTS.items():
        with torch.device("meta"):
            model = build_sam(arch)
        rows.append({
            "variant": name, "image_size": arch.image_size, "params_m": count_parameters(model) / 1e6,
            "encoder_params_m": count_parameters(model.image_encoder) / 1e6,
            "checkpoint": OFFICIAL_CHECKPOINTS.get(name),
        })
    return rows
