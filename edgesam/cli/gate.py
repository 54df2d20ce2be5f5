"""`edgesam check NEW --baseline OLD`: the options and the call of the release gate against the last bundle
(`edgesam.inspection.gate`); `check` without --baseline gates against the PyTorch reference (cli/bench.py)."""
from __future__ import annotations

import click

from edgesam.cli.options import FiniteFloat
from edgesam.utils.outputs import claim_folder

# bench/check options that only the reference comparison uses: refused beside --baseline
REFERENCE_ONLY = ("reference", "min_iou", "max_latency_ms", "max_encoder_ms", "torch_fast", "torch_fast_compile")


def baseline_options(func):
    options = [
        click.option("--baseline", type=click.Path(exists=True, file_okay=False), default=None,
                     help="The last released bundle: gate BUNDLE against it (task and per-class mIoU, verdicts, "
                          "p95 latency) instead of against the PyTorch reference."),
        click.option("--rules", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="With --baseline: the product's rules file (default: BUNDLE's rules.yaml)."),
        click.option("--mm-per-px", default=None, help="With --baseline: calibration X or X,Y (replaces the rules file's)."),
        click.option("--max-miou-drop", type=FiniteFloat(), default=1.0, show_default=True,
                     help="With --baseline: largest allowed drop of task mIoU, in points."),
        click.option("--max-class-drop", type=FiniteFloat(), default=3.0, show_default=True,
                     help="With --baseline: largest allowed drop of any class's mIoU, in points."),
        click.option("--max-verdict-change", type=FiniteFloat(), default=0.05, show_default=True,
                     help="With --baseline: largest allowed share of images whose part verdict changes."),
        click.option("--max-latency-growth", type=FiniteFloat(), default=20.0, show_default=True,
                     help="With --baseline: largest allowed growth of p95 latency, in per cent."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def run_baseline_gate(ctx: click.Context, bundle: str, kw: dict) -> None:
    from edgesam.cli.inspect import parse_mm_per_px
    from edgesam.inspection.gate import GateConfig, format_gate, run_gate

    given = [f"--{name.replace('_', '-')}" for name in REFERENCE_ONLY
             if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT]
    if given:
        raise click.UsageError(f"check --baseline compares two bundles; {', '.join(given)} belong to the check "
                               "against the PyTorch reference (run it separately)")
    if kw["prompt"] != "box":
        raise click.UsageError("check --baseline: verdicts come from box prompts; drop --prompt point")
    sets = [s.strip() for s in (kw["graph_sets"] or "fp32").split(",") if s.strip()]
    if len(sets) != 1 or kw["backends"] not in ("all", "auto") and "," in kw["backends"]:
        raise click.UsageError("check --baseline: give one graph set (--graph-sets) and one backend (--backends)")
    if kw["out"] is not None:
        claim_folder(kw["out"], "check", kw["overwrite"])
    config = GateConfig(
        new=bundle, baseline=kw["baseline"], data=kw["data"], rules=kw["rules"],
        mm_per_px=parse_mm_per_px(ctx, None, kw["mm_per_px"]), graph_set=sets[0],
        backend="auto" if kw["backends"] in ("all", "auto") else kw["backends"], threads=kw["threads"],
        split=kw["split"], val_fraction=kw["val_fraction"], split_seed=kw["split_seed"],
        max_images=kw["max_images"], seed=kw["seed"], box_jitter=kw["box_jitter"],
        max_miou_drop=kw["max_miou_drop"], max_class_drop=kw["max_class_drop"],
        max_verdict_change=kw["max_verdict_change"], max_latency_growth=kw["max_latency_growth"], out=kw["out"],
        overwrite=kw["overwrite"])
    report = run_gate(config)
    click.echo(format_gate(report))
    if report.get("files"):
        click.echo(f"report: {report['files']['markdown']}")
    if not report["passed"]:
        raise SystemExit(1)
