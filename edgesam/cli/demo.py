"""`edgesam demo` and `edgesam pipeline`: every stage, from data to a benched bundle, in one command."""
from __future__ import annotations

import time
from pathlib import Path

import click

from edgesam.cli.options import overwrite_option
from edgesam.utils.outputs import claim_folder


def _run(spec, overwrite: bool) -> None:
    from edgesam.pipeline import StageFailed, run_pipeline

    claim_folder(spec.out_dir, "pipeline", overwrite)

    start = time.perf_counter()
    try:
        summary = run_pipeline(spec, echo=click.echo)
    except StageFailed as exc:
        raise click.ClickException(f"{exc} (outputs of earlier stages are kept under {spec.out}; fix and rerun)") from exc
    minutes = (time.perf_counter() - start) / 60
    ran = [name for name, s in summary.items() if not s["skipped"]]
    click.echo(f"pipeline done in {minutes:.1f} min (ran: {', '.join(ran) or 'nothing, all up to date'}); "
               f"report: {spec.out_dir / 'report.md'}")


@click.command()
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--print-spec", is_flag=True, help="Print the demo's pipeline spec (a starting point for your own) and exit.")
@overwrite_option
def demo(out, print_spec, overwrite):
    """Run the whole pipeline on a built-in default: synthetic inspection images, the small model
    trained from scratch, merge, prune with recovery, fp32 + int8 export, bench against PyTorch, report.

    \b
    Example:
      edgesam demo --out runs/demo        # then open runs/demo/report.md
      edgesam demo --print-spec > pipeline.yaml
    """
    from edgesam.pipeline import demo_spec

    spec = demo_spec(out)
    if print_spec:
        click.echo(spec.to_yaml(), nl=False)
        return
    _run(spec, overwrite)


@click.command()
@click.option("-c", "--config", "spec_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Pipeline spec (YAML); start from `edgesam demo --print-spec`.")
@click.option("--out", default=None, help="Override the spec's output folder.")
@click.option("--data", default=None, help="Override the spec's dataset.")
@click.option("--checkpoint", default=None, help="Override the spec's base checkpoint.")
@overwrite_option
def pipeline(spec_path, out, data, checkpoint, overwrite):
    """Run every stage from one spec file; a rerun skips stages whose inputs did not change.

    \b
    Example:
      edgesam demo --print-spec > pipeline.yaml   # edit: model vit_b, checkpoint, data, strategy lora
      edgesam pipeline -c pipeline.yaml
    """
    from edgesam.pipeline import PipelineSpec

    try:
        spec = PipelineSpec.from_yaml(spec_path, out=out, data=data, checkpoint=checkpoint)
    except (ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from exc
    _run(spec, overwrite)
