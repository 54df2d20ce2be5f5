"""`edgesam finetune`: parse flags (over an optional YAML spec), build a FinetuneConfig, train."""
from __future__ import annotations

import click

# flag -> (config field, click type, help); every flag is optional and overrides the -c spec
FLAGS = [
    ("--model", "model", str, "variant: vit_b, vit_l, vit_h or vit_t (small)"),
    ("--checkpoint", "checkpoint", str, "base SAM checkpoint (.pth / .safetensors)"),
    ("--init", "init", click.Choice(["pretrained", "random"]), "random: train from scratch (labelled in all outputs)"),
    ("--recipe", "recipe", click.Choice(["sam", "scratch"]),
     "defaults that work together; default: sam for --init pretrained, scratch for --init random"),
    ("--image-size", "image_size", int, "input size (multiple of 16); default: the recipe's, else the model's"),
    ("--input-mode", "input_mode", click.Choice(["image", "roi"]), "whole image, or one crop per box (roi)"),
    ("--roi-margin", "roi_margin", float, "roi: crop side as a multiple of the box's longest side"),
    ("--dense-box/--no-dense-box", "dense_box", None, "also give the box as the dense mask prompt"),
    ("--loss", "loss", click.Choice(["focal_dice", "bce_dice"]), "mask loss: SAM's focal+Dice or BCE+Dice"),
    ("--data", "data", str, "dataset folder (images/+masks/, COCO json, or per-class folders)"),
    ("--val-fraction", "val_fraction", float, "validation share, split by stem per class"),
    ("--seed", "seed", int, "seed for init, augmentation, prompts and data order"),
    ("--split-seed", "split_seed", int, "seed of the train/val split (kept apart so seeds share one val split)"),
    ("--strategy", "strategy", click.Choice(["lora", "decoder", "partial", "full"]), "what to train"),
    ("--lora-rank", "lora_rank", int, "LoRA rank"),
    ("--lora-alpha", "lora_alpha", float, "LoRA alpha (scale = alpha / rank)"),
    ("--lora-dropout", "lora_dropout", float, "LoRA dropout"),
    ("--lora-mlp/--no-lora-mlp", "lora_mlp", None, "also adapt the encoder MLPs"),
    ("--decoder-mode", "decoder_mode", click.Choice(["train", "lora", "frozen"]), "mask decoder: train, LoRA or freeze"),
    ("--partial-blocks", "partial_blocks", int, "strategy partial: train the last N encoder blocks"),
    ("--epochs", "epochs", int, "epochs"),
    ("--batch-size", "batch_size", int, "images per step (per GPU)"),
    ("--objects-per-image", "objects_per_image", int, "objects (prompts) per image per step"),
    ("--box-prob", "box_prob", float, "share of images prompted by boxes (rest: points)"),
    ("--lr-encoder", "lr_encoder", float, "learning rate of encoder weights (partial, full)"),
    ("--lr-adapter", "lr_adapter", float, "learning rate of LoRA weights"),
    ("--lr-decoder", "lr_decoder", float, "learning rate of the decoder"),
    ("--grad-accum", "grad_accum", int, "gradient accumulation steps"),
    ("--amp", "amp", click.Choice(["auto", "bf16", "fp16", "off"]), "autocast (auto: bf16 on CUDA)"),
    ("--grad-checkpointing/--no-grad-checkpointing", "grad_checkpointing", None, "recompute encoder blocks"),
    ("--efficient-attention/--official-attention", "efficient_attention", None, "SDPA attention for training"),
    ("--patience", "patience", int, "early stopping patience in epochs (0: off)"),
    ("--out", "out", str, "run directory"),
    ("--device", "device", str, "auto, cpu, cuda, cuda:1"),
    ("--num-workers", "num_workers", int, "data loader workers"),
    ("--max-steps", "max_steps", int, "stop after N optimizer steps"),
    ("--cache-dir", "cache_dir", str, "strategy decoder: on-disk embedding cache"),
]


def _options(f):
    for flag, field, typ, help_ in reversed(FLAGS):
        if typ is None:
            f = click.option(flag, field, default=None, help=help_)(f)
        else:
            f = click.option(flag, field, type=typ, default=None, help=help_)(f)
    return f


@click.command()
@click.option("-c", "--config", "spec", type=click.Path(exists=True, dir_okay=False), help="YAML spec; flags override it.")
@click.option("--print-config", is_flag=True, help="Print the resolved config (defaults + spec + flags) and exit.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@click.option("--compare", default=None, help="Comma-separated strategies to train on the same split and budget.")
@click.option("--no-augment", is_flag=True, help="Turn image augmentation off.")
@_options
def finetune(spec, print_config, resume, compare, no_augment, **flags):
    """Fine-tune SAM on your images (LoRA by default) and write a run dir.

    A recipe sets defaults that work together (flags win): `sam` (pretrained checkpoints) trains LoRA
    on the whole image with focal+Dice; `scratch` (--init random) trains every weight on one crop per
    object around its box, with the box also given as a dense mask prompt and BCE+Dice. The input
    framing (whole image or ROI crops) is recorded with the model: eval, export and the runtime apply it.

    \b
    Example:
      edgesam finetune --model vit_b --checkpoint sam_vit_b_01ec64.pth --data DIR \\
          --strategy lora --epochs 10 --batch-size 4 --out runs/finetune/NAME
      edgesam finetune --print-config > spec.yaml     # start from the defaults
      edgesam finetune -c spec.yaml --compare lora,decoder,partial,full
      torchrun --nproc_per_node 4 $(which edgesam) finetune -c spec.yaml   # DDP, one process per GPU
    """
    from edgesam.train import ConfigError, FinetuneConfig

    overrides = {k: v for k, v in flags.items() if v is not None}
    if no_augment:
        overrides["augment"] = {"enabled": False}
    try:
        if spec:
            cfg = FinetuneConfig.from_yaml(spec, **overrides)
        elif print_config:  # placeholders stand in for the checkpoint and data a real run needs
            cfg = FinetuneConfig.from_dict({**_placeholders(overrides), **overrides}, where="flags")
        else:
            cfg = FinetuneConfig.from_dict(overrides, where="flags")
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    if print_config:
        click.echo(cfg.to_yaml(), nl=False)
        return
    if compare:
        from edgesam.train import compare_strategies

        table = compare_strategies(cfg, [s.strip() for s in compare.split(",") if s.strip()])
        click.echo(table.markdown)
        return
    from edgesam.train import finetune as run

    result = run(cfg, progress=True, resume=resume)
    click.echo(f"run dir {result.run_dir}: best val mIoU {result.best_miou:.4f} (Dice {result.best_dice:.4f}), "
               f"{result.trainable_params:,} trainable params, adapter {result.adapter_bytes / 2**20:.2f} MiB, "
               f"{result.images_per_s:.1f} img/s, peak {result.peak_mem_gib:.2f} GiB, {result.wall_s:.0f} s"
               + (" [init: random]" if result.init == "random" else ""))


def _placeholders(overrides: dict) -> dict:
    """What a printed config shows for the data (and, for a pretrained run, the checkpoint) a real run needs."""
    from edgesam.models import OFFICIAL_CHECKPOINTS

    shown = {"data": "path/to/dataset"}
    if overrides.get("init", "pretrained") == "pretrained":
        shown["checkpoint"] = OFFICIAL_CHECKPOINTS.get(overrides.get("model", "vit_b"), "path/to/checkpoint.pth")
    return shown
