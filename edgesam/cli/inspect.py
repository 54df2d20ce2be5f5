"""`edgesam inspect`: a bundle, a product's rules and a source of frames -> verdicts, overlays, summary."""
from __future__ import annotations

import click

from edgesam.cli.options import FiniteFloat, overwrite_option
from edgesam.utils.outputs import claim_folder


def parse_mm_per_px(ctx, param, value):
    if value is None:
        return None
    try:
        numbers = [float(v) for v in value.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2):
        raise click.BadParameter(f"expected mm per pixel as X or X,Y (per axis), got {value!r}")
    return numbers[0] if len(numbers) == 1 else tuple(numbers)


@click.command()
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--source", required=True, help="A folder of images, a video file, or a camera index (0, 1, ...).")
@click.option("--rules", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The product's rules file (YAML; default: the bundle's rules.yaml).")
@click.option("--boxes", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of <image stem>.json boxes files: [{\"box\": [x0, y0, x1, y1], \"class\": name}] per image.")
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Fixed regions in part coordinates, for parts in the same pose (default: the bundle's recipe.yaml).")
@click.option("--mm-per-px", default=None, callback=parse_mm_per_px, metavar="X[,Y]",
              help="Calibration, mm per pixel (or per axis x,y); replaces the rules file's mm_per_px.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for frames.jsonl, overlays/, summary.json.")
@click.option("--graph-set", default="fp32", show_default=True, help="Graph set of the bundle (fp32, int8, ov_fp32, ...).")
@click.option("--backend", default="auto", show_default=True, help="Runtime backend: auto, onnxruntime, openvino, tensorrt.")
@click.option("--threads", type=int, default=None, help="Intra-op threads of the runtime backend.")
@click.option("--max-frames", type=int, default=None, help="Stop after this many frames (a camera runs until stopped).")
@click.option("--cycle-ms", type=FiniteFloat(), default=None,
              help="The line's cycle time: exit 1 when the p99 latency exceeds it.")
@click.option("--overlays", type=click.Choice(["all", "flagged", "none"]), default="all", show_default=True,
              help="Which frames get an overlay (flagged: NG and REVIEW parts).")
@click.option("--no-progress", is_flag=True, help="No progress bar (stderr).")
@overwrite_option
def inspect(bundle, source, rules, boxes, recipe, mm_per_px, out, graph_set, backend, threads, max_frames, cycle_ms,
            overlays, no_progress, overwrite):
    """Inspect every frame of a source: segment each defect prompt, measure the masks (px and mm), judge them
    under the product's rules (OK / NG / REVIEW per defect and part, with the deciding rule).

    Writes frames.jsonl (per frame: defects, measurements, verdicts, timings; or why the frame was skipped),
    overlays/ with the verdicts drawn, and summary.json (counts per class and verdict, frames/s, latency
    p50/p95/p99 from the first frame on, cold start, CPU and load). A bad frame is logged and skipped.
    Prompts: --boxes (one boxes file per image) or a --recipe of fixed regions (image folders, videos, cameras).

    \b
    Example:
      edgesam inspect runs/bundle --rules tile_rules.yaml --source line/images --boxes line/boxes \\
          --mm-per-px 0.05 --out runs/inspect --cycle-ms 250
      edgesam inspect runs/bundle --recipe part_a.yaml --source 0 --max-frames 1000 --out runs/cam0
    """
    from edgesam.inspection.run import InspectConfig, format_summary, run_inspection

    claim_folder(out, "inspect", overwrite)
    config = InspectConfig(bundle=bundle, source=source, out=out, rules=rules, recipe=recipe, boxes=boxes,
                           mm_per_px=mm_per_px, graph_set=graph_set, backend=backend, threads=threads,
                           max_frames=max_frames, cycle_ms=cycle_ms, overlays=overlays, progress=not no_progress,
                           overwrite=overwrite)
    summary = run_inspection(config)
    click.echo(format_summary(summary))
    click.echo(f"wrote {out}/frames.jsonl, {out}/summary.json" + ("" if overlays == "none" else f", {out}/overlays/"))
    if summary["cycle_met"] is False:
        raise click.ClickException(f"latency p99 {summary['latency_ms']['p99']:.1f} ms > --cycle-ms {cycle_ms:g}")
