"""`edgesam bench` and `edgesam check`: measure a bundle against the PyTorch reference; gate on floors."""
from __future__ import annotations

import click

from edgesam.cli.gate import baseline_options, run_baseline_gate
from edgesam.cli.options import FiniteFloat, overwrite_option
from edgesam.utils.outputs import claim_folder


def _options(func):
    options = [
        click.argument("bundle", type=click.Path(exists=True, file_okay=False)),
        click.option("--data", required=True, type=click.Path(exists=True), help="Dataset with masks (images/+masks/, COCO, class folders)."),
        click.option("--reference", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Checkpoint of the PyTorch reference (default: the bundle's source checkpoint)."),
        click.option("--max-images", type=int, default=8, show_default=True),
        click.option("--prompt", type=click.Choice(["box", "point"]), default="box", show_default=True,
                     help="Prompts drawn from the ground truth: one per object."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Seed of the prompts (and of --max-images' choice)."),
        click.option("--box-jitter", type=FiniteFloat(min=0), default=0.0, show_default=True,
                     help="Box noise (fraction of the side); 0 = tight boxes, as `eval` scores."),
        click.option("--split", type=click.Choice(["all", "val"]), default="all", show_default=True,
                     help="val: only the validation split that finetune held out (same --val-fraction and --split-seed)."),
        click.option("--val-fraction", type=FiniteFloat(), default=0.2, show_default=True),
        click.option("--split-seed", type=int, default=0, show_default=True, help="The finetune run's seed."),
        click.option("--graph-sets", default=None, help="Comma list of graph sets (default: all in the bundle)."),
        click.option("--backends", default="all", show_default=True,
                     help="Backends per graph set: all (every backend that can run it: ONNX graphs on ONNX Runtime "
                          "and OpenVINO), auto (only the default one), or a comma list."),
        click.option("--threads", type=int, default=None, help="Intra-op threads of each runtime backend."),
        click.option("--torch-fast", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
                     help="Also measure the torch fast path (auto: when a CUDA GPU is present)."),
        click.option("--torch-fast-compile", is_flag=True, help="torch.compile the fast path's encoder."),
        click.option("--out", type=click.Path(file_okay=False), default=None, help="Write bench.json, bench.md, bench.png here."),
        overwrite_option,
        click.option("--min-iou", type=FiniteFloat(), default=None,
                     help="Floor: mean mask IoU vs the reference, every format; judged only when >= 90 % of the "
                          "reference masks are non-empty (else it fails, naming the empty ones)."),
        click.option("--max-latency-ms", type=FiniteFloat(), default=None, help="Floor: decoder + postprocessing per prompt, p95."),
        click.option("--max-encoder-ms", type=FiniteFloat(), default=None, help="Floor: encoder latency, p95."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run(bundle, graph_sets, overwrite, **kw):
    from edgesam.bench import BenchConfig, format_table, run_bench
    from edgesam.data.check import require_valid_dataset

    if kw["out"] is not None:
        claim_folder(kw["out"], "bench", overwrite)

    require_valid_dataset(kw["data"])  # a bad file stops here, not after the bundle and reference load

    sets = tuple(s.strip() for s in graph_sets.split(",")) if graph_sets else None
    config = BenchConfig(bundle=bundle, graph_sets=sets, **kw)
    report = run_bench(config)
    click.echo(format_table(report))
    for warning in report["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    if report.get("files"):
        click.echo(f"report: {report['files']['markdown']}")
    if report["floors"]["missed"]:
        raise SystemExit(1)


@click.command()
@_options
def bench(bundle, **kw):
    """Measure every graph set of BUNDLE on every backend that can run it, beside the PyTorch reference,
    on the same images and prompts.

    The header names the CPU, its instruction-set flags (avx2, avx512f, avx512_vnni, avx_vnni,
    avx512_bf16, amx) and the load average, and for each graph set the backend it runs on by default
    and why. Rows: size, the precision the backend actually ran, mask IoU against the reference (mean,
    p5; prompts where both masks are empty are left out and counted), the empty reference and
    predicted masks, task mIoU against the ground truth, encoder and per-prompt decoder latency
    (p50/p95), host pre/post-processing, images/s and cold start. A graph set's row on its default
    backend carries its name; GRAPH_SET@BACKEND rows run the same graphs on another backend. With
    floors (--min-iou, --max-latency-ms, --max-encoder-ms) it exits 1 naming each miss.

    \b
    Example:
      edgesam bench runs/bundle --data ../shared/data/magnetic-tile --reference merged.pth \\
          --max-images 16 --prompt box --out runs/bench
    """
    _run(bundle, **kw)


@click.command()
@_options
@baseline_options
@click.pass_context
def check(ctx, bundle, **kw):
    """Release gate: `bench` that must be given at least one floor; exits 1 naming each missed floor.
    With --baseline OLD: gate BUNDLE against the last released bundle instead (task and per-class mIoU
    against the ground truth, part verdicts under the product's rules, p95 latency); the report lists the
    images whose verdict changed.

    \b
    Example:
      edgesam check runs/bundle --data line-samples/ --reference merged.pth --min-iou 0.98 --max-latency-ms 5
      edgesam check runs/bundle --baseline releases/v3 --data line-samples/ --rules tile_rules.yaml --out runs/gate
    """
    baseline_kw = {k: kw.pop(k) for k in ("baseline", "rules", "mm_per_px", "max_miou_drop", "max_class_drop",
                                          "max_verdict_change", "max_latency_growth")}
    if baseline_kw["baseline"] is not None:
        run_baseline_gate(ctx, bundle, {**kw, **baseline_kw})
        return
    if kw["min_iou"] is None and kw["max_latency_ms"] is None and kw["max_encoder_ms"] is None:
        raise click.UsageError("check: give at least one floor (--min-iou, --max-latency-ms, --max-encoder-ms), "
                               "or --baseline OLD_BUNDLE")
    _run(bundle, **kw)
