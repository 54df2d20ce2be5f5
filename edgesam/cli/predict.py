"""`edgesam predict`: segment one image from point/box prompts and write mask, overlay and scores."""
from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="SAM checkpoint (PyTorch reference path).")
@click.option("--model", "variant", default=None, help="Variant (vit_b, vit_l, vit_h, vit_t); optional when the checkpoint records it.")
@click.option("--image-size", type=int, default=None, help="Input size of the model (default: the checkpoint's).")
@click.option("--box", "boxes", multiple=True, metavar="x0,y0,x1,y1", help="Box prompt; repeat for several boxes (one decoder call).")
@click.option("--point", "points", multiple=True, metavar="x,y[,label]", help="Point prompt; label 1 positive (default) or 0 negative.")
@click.option("--prompts", "prompt_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="JSON prompt file.")
@click.option("--multimask", is_flag=True, help="Return SAM's three candidate masks per prompt.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("predict_out"), show_default=True)
def predict(image, checkpoint, variant, image_size, boxes, points, prompt_file, multimask, out):
    """Segment IMAGE with point and/or box prompts; writes <stem>_mask.png, <stem>_overlay.png and <stem>.json.

    \b
    Example:
      edgesam predict part.png --checkpoint merged.pth --box 40,30,200,160 --point 90,80,1 --out pred/
    """
    from edgesam.predict_cli import run_predict

    if checkpoint is None:
        raise click.UsageError("give --checkpoint (or --bundle, for the exported runtime)")
    try:
        written = run_predict(image, checkpoint, variant, image_size, boxes, points, prompt_file, multimask, out)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in written:
        click.echo(f"wrote {path}")
