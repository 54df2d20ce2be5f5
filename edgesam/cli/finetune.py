"""`edgesam finetune`: parse flags (over an optional YAML spec), build a FinetuneConfig, train."""
from __future__ import annotations

from dataclasses import fields

import click

from edgesam.cli.options import overwrite_option
from edgesam.utils.outputs import claim_folder

# flag -> (config field, click type, help); every flag is optional and overrides the -c spec
FLAGS = [
    ("--model", "model", str, "variant: vit_b, vit_l, vit_h or vit_t (small)"),
    ("--checkpoint", "checkpoint", str, "base SAM checkpoint (.pth / .safetensors)"),
    ("--init", "init", click.Choice(["pretrained", "random"]), "random: train from scratch (labelled in all outputs)"),
    ("--recipe", "recipe", click.Choice(["adapt", "sam", "scratch"]),
     "defaults that work together; default: adapt for --init pretrained, scratch for --init random"),
    ("--image-size", "image_size", int, "input size (multiple of 16); default: the recipe's, else the model's"),
    ("--input-mode", "input_mode", click.Choice(["image", "roi"]), "whole image, or one crop per box (roi)"),
    ("--roi-margin", "roi_margin", float, "roi: crop side as a multiple of the box's longest side"),
    ("--dense-box/--no-dense-box", "dense_box", None, "also give the box as the dense mask prompt"),
    ("--refine", "refine", click.Choice(["auto", "on", "off"]),
     "mask refiner (masks on a finer grid than the decoder's quarter); auto: the base's own, else one where "
     "a class's IoU ceiling on the decoder's grid is below 0.85"),
    ("--refine-stride", "refine_stride", click.Choice(["1", "2"]), "refiner grid: the input side (1) or half of it (2)"),
    ("--loss", "loss", click.Choice(["focal_dice", "bce_dice"]), "mask loss: SAM's focal+Dice or BCE+Dice"),
    ("--data", "data", str, "dataset folder (images/+masks/, COCO json, or per-class folders)"),
    ("--replay", "replay", str, "earlier data mixed into every batch against forgetting: DIR or DIR:FRACTION "
     "(share of each batch, default 0.75); its validation split is scored beside the new one"),
    ("--max-forgetting", "max_forgetting", float,
     "with --replay: mIoU points the replayed classes may lose in a kept epoch [1.0]"),
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
    ("--lr-refiner", "lr_refiner", float, "learning rate of the mask refiner"),
    ("--grad-accum", "grad_accum", int, "gradient accumulation steps"),
    ("--amp", "amp", click.Choice(["auto", "bf16", "fp16", "off"]), "autocast (auto: bf16 on CUDA and on CPUs with bf16 math)"),
    ("--grad-checkpointing/--no-grad-checkpointing", "grad_checkpointing", None, "recompute encoder blocks"),
    ("--efficient-attention/--official-attention", "efficient_attention", None, "SDPA attention for training"),
    ("--val-every", "val_every", int, "validate every N epochs (and after the last)"),
    ("--patience", "patience", int, "early stopping after N validations without gain (0: off)"),
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
@click.option("--resume", is_flag=True,
              help="Continue the run in --out from its last.pt, with its config.yaml (flags may raise --epochs).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None, metavar="STEPS",
              help="Rewrite last.pt every STEPS optimizer steps [500]; it is also rewritten after every minute "
                   "of training and before each validation, so a killed run loses at most a minute.")
@click.option("--compare", default=None, help="Comma-separated strategies to train on the same split and budget.")
@click.option("--no-augment", is_flag=True, help="Turn image augmentation off.")
@overwrite_option
@_options
def finetune(spec, print_config, resume, checkpoint_every, compare, no_augment, overwrite, **flags):
    """Fine-tune SAM on your images (LoRA by default) and write a run dir.

    A recipe sets defaults that work together (flags win): `adapt` (checkpoints) trains LoRA adapters
    on the encoder and decoder (a few % of the weights) with BCE+Dice, framed as the checkpoint records
    it; `sam` is SAM's own focal+Dice at low rates; `scratch` (--init random) trains every weight on one
    crop per object around its box, with the box also given as a dense mask prompt and BCE+Dice. The
    input framing (whole image or ROI crops) and a mask refiner (added where a class's IoU ceiling on the
    decoder's grid is below 0.85) are recorded with the model: eval, export and the runtime apply them.

    The starting model is scored before the first step (epoch 0); a run in which no epoch beats it keeps
    the start's weights as best and says so. --replay DIR[:FRACTION] mixes earlier data into every batch
    against forgetting; epochs are then ranked by the mean of the new and the replayed classes' mIoU, and one
    that loses more than --max-forgetting points on the replayed classes is never kept. A LoRA run's adapter/ is a peft adapter: peft's
    PeftModel.from_pretrained(base_sam, "RUN/adapter") loads it onto the base model (a refiner the run
    added lives beside it: use `edgesam merge`).

    \b
    Example:
      edgesam finetune --model vit_b --checkpoint sam_vit_b_01ec64.pth --data DIR \\
          --strategy lora --epochs 10 --batch-size 4 --out runs/finetune/NAME
      edgesam finetune --print-config > spec.yaml     # start from the defaults
      edgesam finetune -c spec.yaml --compare lora,decoder,partial,full
      edgesam finetune --checkpoint line3.pth --data /data/line4 --replay /data/line3
      torchrun --nproc_per_node 4 $(which edgesam) finetune -c spec.yaml   # DDP, one process per GPU
    """
    from edgesam.train import FinetuneConfig
    from edgesam.utils.config import ConfigError
    from edgesam.train.run import CHECKPOINT_EVERY_STEPS, run_config_path

    overrides = {k: v for k, v in flags.items() if v is not None}
    if "refine_stride" in overrides:
        overrides["refine_stride"] = int(overrides["refine_stride"])
    if no_augment:
        overrides["augment"] = {"enabled": False}
    try:
        if spec:
            cfg = FinetuneConfig.from_yaml(spec, **overrides)
        elif resume:  # the run's own settings, recorded in its run dir
            cfg = FinetuneConfig.from_yaml(run_config_path(overrides.get("out", _default("out"))), **overrides)
        elif print_config:  # placeholders stand in for the checkpoint and data a real run needs
            cfg = FinetuneConfig.from_dict({**_placeholders(overrides), **overrides}, where="flags")
        else:
            cfg = FinetuneConfig.from_dict(overrides, where="flags")
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    if print_config:
        click.echo(cfg.to_yaml(), nl=False)
        return
    if not resume:  # a resumed run continues in its own run dir

        claim_folder(cfg.out_dir, "finetune", overwrite)
    if compare:
        from edgesam.train import compare_strategies

        table = compare_strategies(cfg, [s.strip() for s in compare.split(",") if s.strip()])
        click.echo(table.markdown)
        return
    from edgesam.train import finetune as run

    from edgesam.train.run import outcome_message

    result = run(cfg, progress=True, resume=resume, checkpoint_every=checkpoint_every or CHECKPOINT_EVERY_STEPS)
    if result.kept_start:
        click.echo(outcome_message(result), err=True)
    click.echo(f"run dir {result.run_dir}: {outcome_message(result) if not result.kept_start else 'start kept'} "
               f"(Dice {result.best_dice:.4f}), "
               f"{result.trainable_params:,} trainable params, adapter {result.adapter_bytes / 2**20:.2f} MiB, "
               f"{result.images_per_s:.1f} img/s, peak {result.peak_mem_gib:.2f} GiB, {result.wall_s:.0f} s"
               + (" [init: random]" if result.init == "random" else ""))


def _default(field: str):
    from edgesam.train import FinetuneConfig

    return next(f.default for f in fields(FinetuneConfig) if f.name == field)


def _placeholders(overrides: dict) -> dict:
    """What --print-config shows for the files a real run needs: the data, and the checkpoint that
    fits the chosen model (none for a model trained from scratch)."""
    from edgesam.models import OFFICIAL_CHECKPOINTS

    values = {"data": "path/to/dataset"}
    if overrides.get("init", _default("init")) == "pretrained":
        model = overrides.get("model", _default("model"))
        values["checkpoint"] = OFFICIAL_CHECKPOINTS.get(model, f"path/to/{model}_checkpoint.pth")
    return values
