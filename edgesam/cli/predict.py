"""`edgesam predict`: segment one image from point/box prompts and write mask, overlay and scores."""
from __future__ import annotations

from pathlib import Path

import click

from edgesam.cli.options import overwrite_option
from edgesam.utils.outputs import claim_folder


@click.command()
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="SAM checkpoint (PyTorch reference path).")
@click.option("--bundle", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Exported bundle: segment with the torch-free runtime instead of the PyTorch model.")
@click.option("--graph-set", default="fp32", show_default=True, help="With --bundle: graph set (fp32, fp16, int8, trt_*).")
@click.option("--model", "variant", default=None, help="Variant (vit_b, vit_l, vit_h, vit_t); optional when the checkpoint records it.")
@click.option("--image-size", type=int, default=None, help="Input size of the model (default: the checkpoint's).")
@click.option("--box", "boxes", multiple=True, metavar="x0,y0,x1,y1", help="Box prompt; repeat for several boxes (one decoder call).")
@click.option("--point", "points", multiple=True, metavar="x,y[,label]", help="Point prompt; label 1 positive (default) or 0 negative.")
@click.option("--prompts", "prompt_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="JSON prompt file.")
@click.option("--multimask", is_flag=True, help="Return SAM's three candidate masks per prompt.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("predict_out"), show_default=True)
@overwrite_option
def predict(image, checkpoint, bundle, graph_set, variant, image_size, boxes, points, prompt_file, multimask, out,
            overwrite):
    """Segment IMAGE with point and/or box prompts; writes <stem>_mask.png, <stem>_overlay.png and <stem>.json.

    Each empty mask (no pixel above the threshold) is reported on stderr and in the JSON (empty_masks).

    \b
    Example:
      edgesam predict part.png --checkpoint merged.pth --box 40,30,200,160 --point 90,80,1 --out pred/
      edgesam predict part.png --bundle runs/bundle --box 40,30,200,160 --out pred/
    """
    from edgesam.predict.run import run_predict, run_predict_bundle

    if (checkpoint is None) == (bundle is None):
        raise click.UsageError("give --checkpoint (PyTorch) or --bundle (exported runtime), exactly one")
    if bundle is not None and (variant is not None or image_size is not None):  # a bundle records both
        raise click.UsageError("--model and --image-size go with --checkpoint; a bundle records its model and size")
    claim_folder(out, "predict", overwrite)
    if bundle is not None:
        written, warnings = run_predict_bundle(image, bundle, graph_set, boxes, points, prompt_file, multimask, out)
    else:
        written, warnings = run_predict(image, checkpoint, variant, image_size, boxes, points, prompt_file,
                                        multimask, out)
    for line in warnings:
        click.echo(line, err=True)
    for path in written:
        click.echo(f"wrote {path}")
