"""`edgesam info`: model variants and the versions of everything the pipeline depends on."""
from __future__ import annotations

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def info(as_json: bool):
    """Show model variants (parameters) and tool versions (torch, CUDA, onnxruntime, TensorRT).

    \b
    Example:
      edgesam info
    """
    import json

    from edgesam.envinfo import environment, variant_table

    env, variants = environment(), variant_table()
    if as_json:
        click.echo(json.dumps({"environment": env, "variants": variants}, indent=2))
        return
    click.echo("Variants:")
    for row in variants:
        click.echo(f"  {row['variant']:6s} image {row['image_size']:5d}  params {row['params_m']:8.2f} M"
                   f"  (encoder {row['encoder_params_m']:.2f} M)  {row['checkpoint'] or 'edgesam small variant'}")
    click.echo("Environment:")
    for key, value in env.items():
        click.echo(f"  {key:24s} {value}")
