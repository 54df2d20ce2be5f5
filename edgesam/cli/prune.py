"""`edgesam prune`: structured pruning of the image encoder, optional recovery, full report."""
from __future__ import annotations

from pathlib import Path

import click

from edgesam.cli.options import FiniteFloat, overwrite_option
from edgesam.utils.outputs import check_new_file, claim_folder


def _blocks(ctx, param, value):
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated block indices like 3,7; got {value!r}")


@click.command()
@click.option("-c", "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML with sections prune: and recover: plus job keys; flags override it.")
@click.option("--print-config", is_flag=True, help="Print the default config as YAML and exit.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Merged or official checkpoint.")
@click.option("--model", help="Variant (vit_b, vit_l, vit_h, vit_t); optional with a checkpoint.")
@click.option("--image-size", type=int, help="Input size (default: the checkpoint's).")
@click.option("--ratio", type=FiniteFloat(), help="Fraction of heads and MLP channels to remove.")
@click.option("--head-ratio", type=FiniteFloat(), help="Fraction of attention heads to remove (overrides --ratio).")
@click.option("--mlp-ratio", type=FiniteFloat(), help="Fraction of MLP hidden channels to remove (overrides --ratio).")
@click.option("--importance", type=click.Choice(["magnitude", "taylor"]), help="Ranking score [magnitude].")
@click.option("--scope", type=click.Choice(["per_block", "global"]), help="Same ratio in every block, or ranked globally.")
@click.option("--remove-blocks", callback=_blocks, help="Encoder blocks to drop entirely, e.g. 3,7.")
@click.option("--calib-data", type=click.Path(exists=True, path_type=Path), help="Images for the taylor score.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Pruned checkpoint to write.")
@click.option("--recover-data", type=click.Path(exists=True, path_type=Path), help="Dataset for recovery fine-tuning.")
@click.option("--recover-epochs", type=int, help="Recovery epochs (enables recovery).")
@click.option("--recover-steps", type=int, help="Stop recovery after this many images.")
@click.option("--lr", type=FiniteFloat(), help="Recovery learning rate.")
@click.option("--eval-data", type=click.Path(exists=True, path_type=Path), help="Accuracy set (default: validation split of --recover-data).")
@click.option("--eval-max-images", type=int, help="Evaluate on at most this many images.")
@click.option("--latency-runs", type=int, help="ONNX Runtime timing runs per encoder (0 skips) [3].")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), help="Report folder [OUT_prune_run/].")
@click.option("--seed", type=int, help="Seed of importance probes, recovery and split [0].")
@overwrite_option
def prune(config_path, print_config, overwrite, **flags):
    """Prune attention heads, MLP channels and blocks of the image encoder into a smaller model.

    Writes the pruned checkpoint (its architecture recorded, so export and the runtime need no
    flags) and a run dir with report.json/md: parameters, FLOPs, ONNX Runtime latency, mask IoU
    against the unpruned model and task mIoU, before and after recovery.

    \b
    Example:
      edgesam prune --checkpoint merged.pth --head-ratio 0.25 --mlp-ratio 0.5 --out pruned.pth \\
          --recover-data ../shared/data/magnetic-tile --recover-epochs 2
    """
    import yaml

    from edgesam.compress.config import build_job, default_config

    if print_config:
        click.echo(yaml.safe_dump(default_config(), sort_keys=False))
        return
    from edgesam_runtime.yamlio import read_yaml_mapping

    try:
        job = build_job(read_yaml_mapping(config_path) if config_path else {}, flags)
    except ValueError as exc:
        raise click.UsageError(str(exc))
    from edgesam.compress.pipeline import run_prune
    from edgesam.data.check import require_valid_dataset

    check_new_file(job.out, overwrite)
    claim_folder(job.run_dir, "prune", overwrite, "--run-dir")

    for data in {job.recover_data, job.eval_data} - {None}:
        require_valid_dataset(data)  # a bad file stops here, not after pruning and timing
    run_prune(job, log=click.echo)
    click.echo(f"wrote {job.out} and {job.run_dir}/report.md")
