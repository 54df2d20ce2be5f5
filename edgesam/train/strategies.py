"""What a fine-tuning strategy trains: freezes the rest and returns optimizer parameter groups.

- lora: peft LoRA on the encoder attention (`attn.qkv`, `attn.proj`; optionally `mlp.lin1/lin2`),
  targeted with an anchored regex (a bare `proj` would also match the patch-embedding Conv2d);
  decoder LoRA'd (the default: adapters only, a few % of the weights), trained or frozen (`decoder_mode`).
- decoder: image and prompt encoders frozen, mask decoder trained (embeddings can be cached).
- partial: the last N encoder blocks (+ neck) and the decoder.
- full: everything.

A mask refiner (`sam.mask_refiner`, when the model has one) is trained whole by every strategy: it is
small (tens of thousands of weights) and, when a run adds it, starts untrained.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

DECODER_LORA_PATTERN = r"mask_decoder\..*\.(q_proj|k_proj|v_proj|out_proj)"


@dataclass
class Strategy:
    sam: torch.nn.Module  # the Sam being trained (LoRA layers injected in place when used)
    peft_model: object | None  # peft wrapper when LoRA is used (for merge_and_unload)
    groups: list[dict]  # optimizer parameter groups: {"name", "params", "lr"}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Name -> tensor of every trained parameter (keys of `self.sam`'s state dict)."""
        return {n: p.detach() for n, p in self.sam.named_parameters() if p.requires_grad}

    @property
    def trainable_params(self) -> int:
        return sum(p.numel() for g in self.groups for p in g["params"])


def lora_target_pattern(cfg) -> str | None:
    """Anchored regex (peft full-match) over module names of the modules to adapt."""
    parts = []
    if cfg.strategy == "lora":
        blocks = r"\d+" if cfg.lora_blocks is None else "(" + "|".join(str(b) for b in cfg.lora_blocks) + ")"
        layers = "qkv|proj" if not cfg.lora_mlp else None
        parts.append(rf"image_encoder\.blocks\.{blocks}\.attn\.(qkv|proj)" if layers else
                     rf"image_encoder\.blocks\.{blocks}\.(attn\.(qkv|proj)|mlp\.(lin1|lin2))")
    if cfg.decoder_mode == "lora":
        parts.append(DECODER_LORA_PATTERN)
    return "|".join(f"({p})" for p in parts) if parts else None


def lora_settings(cfg) -> dict | None:
    """The run's LoRA settings as plain data (None: the run has no LoRA layers)."""
    pattern = lora_target_pattern(cfg)
    if pattern is None:
        return None
    return {"rank": cfg.lora_rank, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout, "target_modules": pattern}


def peft_lora_config(settings: dict, modules_to_save: list[str] | None = None):
    """peft's LoraConfig for `lora_settings`: what training injects and what the adapter folder records."""
    from peft import LoraConfig  # only when needed: importing peft takes seconds

    return LoraConfig(r=settings["rank"], lora_alpha=settings["alpha"], lora_dropout=settings["dropout"],
                      target_modules=settings["target_modules"], bias="none", modules_to_save=modules_to_save)


def lora_config(cfg):
    settings = lora_settings(cfg)
    return None if settings is None else peft_lora_config(settings)


def apply_strategy(sam: torch.nn.Module, cfg) -> Strategy:
    """Freeze/adapt `sam` for `cfg.strategy`; returns the (possibly LoRA-injected) model and groups."""
    if cfg.strategy == "lora" and cfg.lora_blocks is not None:
        depth = len(sam.image_encoder.blocks)
        bad = [b for b in cfg.lora_blocks if not 0 <= b < depth]
        if bad:
            raise ValueError(f"lora_blocks: blocks {bad} do not exist; the encoder has blocks 0..{depth - 1}")
    peft_model = None
    lcfg = lora_config(cfg)
    for p in sam.parameters():
        p.requires_grad_(False)
    if lcfg is not None:
        from peft import get_peft_model

        peft_model = get_peft_model(sam, lcfg)  # injects in place; `sam` stays the module we call
    groups = _groups(sam, cfg)
    for g in groups:
        for p in g["params"]:
            p.requires_grad_(True)
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ValueError(f"strategy {cfg.strategy} with decoder_mode {cfg.decoder_mode}: nothing to train")
    return Strategy(sam, peft_model, groups)


def _named(module, prefix):
    return [(f"{prefix}.{n}", p) for n, p in module.named_parameters()]


def _groups(sam, cfg) -> list[dict]:
    lora = [p for n, p in sam.named_parameters() if ".lora_" in n]
    enc, dec, prompt = [], [], []
    decoder = [p for n, p in _named(sam.mask_decoder, "mask_decoder") if ".lora_" not in n]
    if cfg.decoder_mode == "train":
        dec = decoder
    if cfg.strategy == "full":
        enc = [p for n, p in _named(sam.image_encoder, "image_encoder") if ".lora_" not in n]
        prompt = list(sam.prompt_encoder.parameters())
    elif cfg.strategy == "partial":
        blocks = sam.image_encoder.blocks
        n = min(cfg.partial_blocks, len(blocks))
        enc = [p for b in list(blocks)[len(blocks) - n:] for p in b.parameters()]
        enc += list(sam.image_encoder.neck.parameters())
    refiner = list(sam.mask_refiner.parameters()) if hasattr(sam, "mask_refiner") else []
    return [
        {"name": "encoder", "params": enc, "lr": cfg.lr_encoder},
        {"name": "adapter", "params": lora, "lr": cfg.lr_adapter},
        {"name": "refiner", "params": refiner, "lr": cfg.lr_refiner},
        {"name": "decoder", "params": dec + prompt, "lr": cfg.lr_decoder},
    ]
