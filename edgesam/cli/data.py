"""`edgesam data`: validate a dataset folder and write synthetic inspection datasets."""
from __future__ import annotations

import json
from pathlib import Path

import click

from edgesam.cli.errors import printable
from edgesam.cli.options import overwrite_option
from edgesam.utils.outputs import check_new_file, claim_folder, write_new_file


@click.group()
def data():
    """Dataset tools: check a dataset before training, synthesize a demo set.

    \b
    Examples:
      edgesam data check ../shared/data/magnetic-tile
      edgesam data synth runs/synth --count 64 --free 16
    """


@data.command()
@click.argument("directory", metavar="DIR", type=click.Path(exists=True, path_type=Path))
@click.option("--min-area", default=16, show_default=True, type=click.IntRange(min=1),
              help="Objects (connected regions) smaller than this many pixels are ignored.")
@click.option("--mask-mode", type=click.Choice(["auto", "binary", "instance"]), default="auto",
              show_default=True, help="How mask files are read: binary (>127, regions) or instance ids.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the full report (counts, errors, warnings) to this JSON file.")
@click.option("--max-warnings", default=20, show_default=True, help="Warnings printed (all go to --json).")
@click.option("--ceiling/--no-ceiling", default=True, show_default=True,
              help="Also print, per class, the IoU ceiling of each mask grid a model can draw on.")
@overwrite_option
def check(directory: Path, min_area: int, mask_mode: str, json_path: Path | None, max_warnings: int, ceiling: bool,
          overwrite: bool):
    """Read every image and mask in DIR and report per class; exit 1 if any file is bad.

    DIR is an images/ + masks/ folder, a COCO JSON (or its folder), or a folder of those, one per
    class. Errors name each file: unreadable or truncated images, images without masks, image/mask
    size mismatches, undecodable COCO annotations.

    For a labelled dataset it then prints the IoU ceiling of each mask grid per class: the IoU of the
    best mask a model can draw on that grid (ground truth taken to the grid and back), for ROI crops
    at 128 and 256 px on the decoder's grid and with a refiner's full-resolution grid, and SAM's whole
    image at 1024 px; and it recommends the cheapest on which every class reaches 0.85.

    \b
    Example:
      edgesam data check ../shared/data/magnetic-tile --json runs/data_check.json
    """
    from edgesam.data import check_dataset

    if json_path is not None:
        check_new_file(json_path, overwrite, "--json")
    report = check_dataset(directory, min_area=min_area, mask_mode=mask_mode)
    click.echo(printable(f"{directory}  (layout: {report.layout}, min area {min_area} px)"))
    if report.classes:
        click.echo("\n".join(printable(line) for line in report.format_table().splitlines()))
    for msg in report.warnings[:max_warnings]:
        click.echo(printable(f"warning: {msg}"))
    if len(report.warnings) > max_warnings:
        click.echo(f"... {len(report.warnings) - max_warnings} more warnings" + (" (see --json)" if json_path else ""))
    for msg in report.errors:
        click.echo(printable(f"error: {msg}"), err=True)
    record = report.to_dict()
    if ceiling and report.ok and report.totals()["objects"]:
        record["ceiling"] = _print_ceilings(directory, min_area, mask_mode)
    if json_path is not None:
        write_new_file(json_path, json.dumps(record, indent=2) + "\n", overwrite, "--json")
    if not report.ok:
        click.echo(f"FAILED: {len(report.errors)} error(s)", err=True)
        raise SystemExit(1)
    click.echo(f"OK: {report.totals()['images']} images, {report.totals()['objects']} objects")


def _print_ceilings(directory: Path, min_area: int, mask_mode: str) -> dict:
    """The mask-grid IoU ceiling table and the recommended framing; returns them for --json."""
    from edgesam.data import load_dataset
    from edgesam.eval.ceiling import CEILING_FLOOR, candidate_grids, class_ceilings, format_table, recommend

    grids = candidate_grids()
    ceilings = class_ceilings(load_dataset(directory, min_area=min_area, mask_mode=mask_mode), grids)
    click.echo("\nIoU ceiling of each mask grid (the best mask it can draw; up to 100 objects per class):")
    click.echo(format_table(ceilings, grids))
    best = recommend(ceilings, grids)
    if best is None:
        click.echo(f"recommended: none of these grids reaches {CEILING_FLOOR} in every class; the finest is the best bet")
    else:
        flags = "--input-mode roi" if best.framing.roi else "--input-mode image"
        flags += f" --image-size {best.image_size}" + (" --refine on" if best.refined else " --refine off")
        click.echo(f"recommended: {best.describe()} (every class >= {CEILING_FLOOR}); finetune {flags}")
    return {"floor": CEILING_FLOOR, "recommended": None if best is None else best.describe(),
            "grids": {g.describe(): {c: v[g] for c, v in ceilings.items()} for g in grids}}


@data.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--count", default=32, show_default=True, type=click.IntRange(min=0),
              help="Labelled images in total, spread evenly over the classes.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Same seed, same bytes.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(min=16, max=8192),
              help="Nominal side in pixels; each side varies in 0.75-1.25x of it.")
@click.option("--free", "free_count", default=0, show_default=True, type=click.IntRange(min=0),
              help="Defect-free images written to OUT/free/images (calibration, negatives).")
@click.option("--classes", default="scratch,pit,crack,stain", show_default=True,
              help="Comma-separated defect classes.")
@overwrite_option
def synth(out: Path, count: int, seed: int, size: int, free_count: int, classes: str, overwrite: bool):
    """Write a synthetic inspection dataset (grayscale surfaces with drawn defects) to OUT.

    Layout: OUT/<class>/images/*.png and OUT/<class>/masks/*.png (0/255), plus OUT/free/images.

    \b
    Example:
      edgesam data synth runs/synth --count 64 --seed 1 --size 320 --free 16
    """
    from edgesam.data import synthesize_dataset

    names = tuple(c.strip() for c in classes.split(",") if c.strip())
    if count == 0 and free_count == 0:
        raise click.UsageError("--count 0 and --free 0: nothing to write; ask for labelled or defect-free images")
    claim_folder(out, "data-synth", overwrite)
    try:
        root = synthesize_dataset(out, count=count, seed=seed, size=size, classes=names, free_count=free_count)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--classes") from exc
    per_class = {p.name: len(list((p / "images").glob("*.png"))) for p in sorted(root.iterdir()) if (p / "images").is_dir()}
    summary = ", ".join(f"{k} {v}" for k, v in per_class.items())
    click.echo(f"wrote {count} labelled + {free_count} defect-free images to {root} ({summary}; seed {seed})")
