"""`edgesam merge RUN_DIR --out merged.pth`: fold a run's adapter into a plain SAM checkpoint."""
from __future__ import annotations

import time

import click

from edgesam.cli.options import overwrite_option
from edgesam.utils.outputs import check_new_file


@click.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Merged checkpoint (.pth or .safetensors).")
@click.option("--base", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Base checkpoint if it moved (must have the recorded sha256).")
@click.option("--verify", type=click.Choice(["full", "layers"]), default="full", show_default=True,
              help="full: end-to-end logits on a probe image; layers: per-layer + decoder (fast for ViT-H on CPU).")
@overwrite_option
def merge(run_dir, out, base, verify, overwrite):
    """Merge a fine-tuned run into one checkpoint that segment_anything loads strictly.

    \b
    Example:
      edgesam merge runs/finetune/NAME --out merged.pth
    """
    from edgesam.train.merge import merge_run

    check_new_file(out, overwrite)

    start = time.perf_counter()
    r = merge_run(run_dir, out, base=base, verify=verify,
                  log=lambda message: click.echo(f"[merge {time.perf_counter() - start:6.1f}s] {message}", err=True))
    kind = "plain SAM state dict (stock-loadable)" if r.plain else "edgesam checkpoint with recorded arch"
    if r.kept_start:
        click.echo(f"NO GAIN: {run_dir} ended without beating its starting model; {r.out_path} holds the START's "
                   "weights (the model the run started from)", err=True)
    click.echo(f"wrote {r.out_path} ({r.out_bytes / 2**20:.1f} MiB, {kind}); {r.variant}@{r.image_size}, "
               f"strategy {r.strategy}, init {r.init}; merged vs adapted max |dlogit| {r.max_diff_merged_vs_adapted:.2e} "
               f"(tolerance {r.tolerance:.1e}), vs base {r.max_diff_merged_vs_base:.3g}")
