"""`edgesam calib`: build an INT8 calibration set from your own line images."""
from __future__ import annotations

from pathlib import Path

import click

from edgesam.cli.options import overwrite_option


@click.group()
def calib():
    """INT8 calibration sets (what `edgesam export --int8 --calib-data DIR` reads).

    \b
    Example:
      edgesam calib build ../shared/data/magnetic-tile/free/images runs/calib --count 32
    """


@calib.command()
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--count", "-n", default=16, show_default=True, type=click.IntRange(min=1),
              help="Images to keep (a diverse sample; 16-64 is typical).")
@overwrite_option
def build(src: Path, out: Path, count: int, overwrite: bool):
    """Choose COUNT diverse images from SRC (searched recursively; masks/ folders skipped) into OUT.

    Diversity: farthest-point sampling on thumbnails and intensity statistics, so lighting and part
    variants are covered rather than many near-identical frames. OUT/selection.json records the choice.

    \b
    Example:
      edgesam calib build /data/line3/2024-06 calib/line3 --count 32
      edgesam export --checkpoint merged.pth --out bundle --int8 --calib-data calib/line3
    """
    from edgesam.export.calib_select import build_calibration_set

    summary = build_calibration_set(src, out, count, overwrite)
    click.echo(f"{out}: {summary['count']} of {summary['candidates']} images chosen ({summary['method']})")
