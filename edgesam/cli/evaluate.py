"""`edgesam eval`: box- or point-prompted evaluation of a checkpoint (optionally against a base)."""
from __future__ import annotations

import click

from edgesam.cli.options import FiniteFloat, overwrite_option
from edgesam.utils.outputs import claim_folder


@click.command()
@click.option("--checkpoint", required=True, type=click.Path(exists=True, dir_okay=False), help="Model to evaluate.")
@click.option("--adapter", default=None, type=click.Path(exists=True, file_okay=False),
              help="A finetune run dir: evaluate checkpoint + its adapter (merged in memory) against the checkpoint.")
@click.option("--base", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Another checkpoint to compare against (side by side with the gain).")
@click.option("--data", required=True, type=click.Path(exists=True), help="Dataset folder.")
@click.option("--prompt", type=click.Choice(["box", "point"]), default="box", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the prompts drawn from ground truth.")
@click.option("--box-jitter", type=FiniteFloat(min=0), default=0.0, show_default=True, help="Box noise (fraction of the side); 0 = tight boxes.")
@click.option("--split", type=click.Choice(["all", "val"]), default="all", show_default=True,
              help="val: only the validation split (--val-fraction, --split-seed) a finetune run held out.")
@click.option("--val-fraction", type=FiniteFloat(), default=0.2, show_default=True)
@click.option("--split-seed", default=0, show_default=True, help="The finetune run's --split-seed.")
@click.option("--image-size", default=None, type=int, help="Input size (default: the checkpoint's).")
@click.option("--max-images", default=None, type=int, help="Score at most this many images (classes take turns).")
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Write eval.json and eval.md here.")
@overwrite_option
def evaluate(checkpoint, adapter, base, data, prompt, seed, box_jitter, split, val_fraction, split_seed, image_size,
             max_images, out, overwrite):
    """Measure mIoU, Dice, boundary F-score and HD95 per class and object size.

    \b
    Example:
      edgesam eval --checkpoint merged.pth --base sam_vit_b_01ec64.pth --data DIR --prompt box --out runs/eval
      edgesam eval --checkpoint sam_vit_b_01ec64.pth --adapter runs/finetune/NAME --data DIR
    """
    from edgesam.data.check import require_valid_dataset
    from edgesam.eval import run_eval

    if out is not None:
        claim_folder(out, "eval", overwrite)
    require_valid_dataset(data)  # a bad file stops here, not halfway through the models
    text = run_eval(checkpoint=checkpoint, adapter=adapter, base=base, data=data, prompt=prompt, seed=seed,
                    box_jitter=box_jitter, split=split, val_fraction=val_fraction, split_seed=split_seed,
                    image_size=image_size,
                    max_images=max_images, out=out)
    click.echo(text)
