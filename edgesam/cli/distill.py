"""`edgesam distill`: parse flags (over an optional YAML spec), build a DistillConfig, run or compare."""
from __future__ import annotations

import click

from edgesam.cli.options import overwrite_option
from edgesam.utils.outputs import check_new_file, claim_folder

# flag -> (config field, click type, help); every flag is optional and overrides the -c spec
FLAGS = [
    ("--teacher", "teacher", str, "teacher checkpoint: the fine-tuned (merged) model"),
    ("--student", "student", str, "student variant, e.g. vit_n (smallest) or vit_t"),
    ("--images", "images", str, "line images: a dataset folder (free/ and other unlabelled folders count) or a flat folder"),
    ("--image-size", "image_size", int, "input size of teacher and student (multiple of 16); default: the teacher's"),
    ("--out", "out", str, "student checkpoint to write"),
    ("--run-dir", "run_dir", str, "run directory [OUT without suffix + _distill]"),
    ("--cache-dir", "cache_dir", str, "teacher embedding cache [RUN_DIR/teacher_cache]; share it between runs"),
    ("--teacher-backend", "teacher_backend", click.Choice(["auto", "torch", "onnx", "openvino", "openvino_bf16"]),
     "what computes the teacher cache: auto (the fastest here: OpenVINO, bf16 where the CPU has bf16 math), "
     "PyTorch, or the exported encoder on ONNX Runtime / OpenVINO fp32 / OpenVINO bf16 [auto]"),
    ("--views", "views_per_image", int, "cached inputs per image: 1 as at inference + augmented copies"),
    ("--loss", "loss", click.Choice(["mse", "mse+cos"]), "embedding loss"),
    ("--epochs", "epochs", int, "epochs of the embedding stage"),
    ("--batch-size", "batch_size", int, "views per step"),
    ("--lr", "lr", float, "learning rate of the embedding stage"),
    ("--max-steps", "max_steps", int, "stop the embedding stage after N steps"),
    ("--mask-epochs", "mask_epochs", int, "second stage: epochs end to end on the teacher's masks (0: off)"),
    ("--mask-lr", "mask_lr", float, "learning rate of the mask stage (decoder: a tenth)"),
    ("--max-images", "max_images", int, "use at most N training images"),
    ("--val-fraction", "val_fraction", float, "held-out share of the images (finetune's --val-fraction)"),
    ("--eval-max-images", "eval_max_images", int, "held-out images for validation and the report"),
    ("--latency-runs", "latency_runs", int, "ONNX Runtime encoder timing runs, teacher vs student (0 skips)"),
    ("--threads", "threads", int, "torch / ONNX Runtime threads"),
    ("--amp", "amp", click.Choice(["auto", "bf16", "off"]), "autocast of the student's training (auto: bf16 on CPUs with bf16 math) [auto]"),
    ("--split-seed", "split_seed", int, "seed of the held-out split (finetune's --split-seed)"),
    ("--seed", "seed", int, "seed of views, prompts, student init and order"),
]


def _options(f):
    for flag, field, typ, help_ in reversed(FLAGS):
        f = click.option(flag, field, type=typ, default=None, help=help_)(f)
    return f


@click.command()
@click.option("-c", "--config", "spec", type=click.Path(exists=True, dir_okay=False), help="YAML spec; flags override it.")
@click.option("--print-config", is_flag=True, help="Print the resolved config (defaults + spec + flags) and exit.")
@click.option("--resume", is_flag=True, help="Continue the run in the run dir from its last.pt.")
@click.option("--compare", default=None, help="Comma-separated student variants to distil on the same budget.")
@overwrite_option
@_options
def distill(spec, print_config, resume, compare, overwrite, **flags):
    """Distil a small student encoder from a fine-tuned SAM on your own (unlabelled) line images.

    Teacher embeddings are computed once and cached (fp16, resumable); the student encoder learns them,
    keeps the teacher's prompt encoder and mask decoder, and is written as a complete checkpoint that
    eval, export, predict and the runtime take without flags. The run dir holds config.yaml,
    metrics.csv, status.jsonl, curves.png and report.md (student vs teacher on held-out images).

    \b
    Example:
      edgesam distill --teacher merged.pth --student vit_n --images /data/line3 --out student.pth
      edgesam distill -c distill.yaml --compare vit_n,vit_t      # pick a student from measurements
    """
    from edgesam.distill import DistillConfig
    from edgesam.utils.config import ConfigError

    overrides = {k: v for k, v in flags.items() if v is not None}
    try:
        if spec:
            cfg = DistillConfig.from_yaml(spec, **overrides)
        else:
            cfg = DistillConfig.from_dict(overrides, where="flags")
        if not print_config:
            cfg.validate()
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    if print_config:
        click.echo(cfg.to_yaml(), nl=False)
        return
    if compare:
        from edgesam.distill import compare_students
        from edgesam.distill.variants import comparison_markdown

        rows = compare_students(cfg, [v.strip() for v in compare.split(",") if v.strip()], log=click.echo)
        click.echo(comparison_markdown(rows))
        return
    from edgesam.distill import distill as run

    if not resume:  # a resumed run continues in its own run dir and writes its own student
        check_new_file(cfg.out, overwrite)
        claim_folder(cfg.run_path, "distill", overwrite, "--run-dir")
    report = run(cfg, progress=True, resume=resume, log=click.echo)
    click.echo(f"wrote {report['out']}; report {report['run_dir']}/report.md")
