"""`run_bench(config)`: every format of a bundle beside the PyTorch reference, on the same prompts."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from edgesam.bench.config import BenchConfig
from edgesam.bench.floors import check_floors
from edgesam.bench.formats import RuntimeFormat, TorchFormat
from edgesam.bench.format_run import FormatRun, run_format, summarize_run
from edgesam.eval.agreement import empty_masks_line
from edgesam.eval.plan import PromptPlan, build_plan
from edgesam.eval.split import scoring_set
from edgesam.bench.report import write_report
from edgesam_runtime.backends.choice import FORMAT_BACKENDS, auto_choice, cpu_notes, graph_set_format
from edgesam_runtime.bundle import load_bundle
from edgesam_runtime.envinfo import load_average, machine_state
from edgesam_runtime.errors import BackendError
from edgesam_runtime.files import sha256_file
from edgesam_runtime.manifest import read_manifest


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _reference_checkpoint(config: BenchConfig, manifest: dict, warnings: list) -> str:
    source = manifest.get("source", {}) or {}
    checkpoint = config.reference or source.get("checkpoint")
    if not checkpoint:
        raise ValueError(f"{config.bundle}: exported without --checkpoint (random weights), so there is no "
                         "reference model to compare with; pass --reference CHECKPOINT")
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"reference: checkpoint {checkpoint!r} not found; pass --reference CHECKPOINT "
                                "(the checkpoint the bundle was exported from)")
    expected = source.get("checkpoint_sha256")
    if expected and sha256_file(checkpoint) != expected:
        warnings.append(f"reference {checkpoint} is not the bundle's source checkpoint (sha256 differs): "
                        "IoU against it measures the difference between two models")
    return str(checkpoint)


def runtime_formats(config: BenchConfig, manifest: dict) -> tuple[list[RuntimeFormat], dict]:
    """Every (graph set, backend) pair to measure, the default backend first, and for each graph set
    the backend `Segmenter.open` takes by default with its reason."""
    formats, defaults = [], {}
    for name in config.graph_sets or tuple(manifest["graphs"]):
        if name not in manifest["graphs"]:
            raise ValueError(f"graph_sets: {config.bundle} has no graph set {name!r}; it has {sorted(manifest['graphs'])}")
        default, why = auto_choice(manifest, name)
        defaults[name] = {"backend": default, "why": why}
        others = [b for b in FORMAT_BACKENDS[graph_set_format(manifest, name)] if b != default]
        formats += [RuntimeFormat(config.bundle, name, config.threads, backend, default=backend == default,
                                  choice=why if backend == default else None)
                    for backend in [default, *others] if config.wants(backend, backend == default)]
    return formats, defaults


def _formats(config: BenchConfig, manifest: dict, checkpoint: str) -> tuple[list, dict]:
    formats, defaults = runtime_formats(config, manifest)
    fast = _fast_format(config, checkpoint)
    return formats + ([fast] if fast else []), defaults


def _fast_format(config: BenchConfig, checkpoint: str):
    if config.torch_fast == "off":
        return None
    import torch

    cuda = torch.cuda.is_available()
    if config.torch_fast == "auto" and not cuda:
        return None
    from edgesam.bench.fast_path import FastPathConfig

    fast = FastPathConfig(dtype=config.torch_fast_dtype, compile=config.torch_fast_compile)
    return TorchFormat(checkpoint, fast, "cuda" if cuda else "cpu")


def bench_plan(config: BenchConfig) -> PromptPlan:
    """The images and prompts every format answers (the same plan `eval` draws for the same settings)."""
    dataset = scoring_set(config.data, config.split, config.val_fraction, config.split_seed)
    plan = build_plan(dataset, config.prompt, config.seed, config.box_jitter, config.max_images)
    if not plan.items:
        raise ValueError(f"{config.data}: no labelled image with at least one object to benchmark on")
    return plan


def _measure(fmt, plan, manifest) -> FormatRun:
    info = fmt.describe(manifest)
    _log(f"{fmt.name}: {len(plan)} images")
    try:
        return run_format(fmt, plan, info)
    except BackendError as exc:  # e.g. an engine for another GPU: report it, measure the rest
        return FormatRun(fmt.name, info, skipped=str(exc))


def run_bench(config: BenchConfig) -> dict:
    """Measure, score, check floors and (with `config.out`) write the report; returns it as a dict."""
    from edgesam.utils.environment import toolchain_environment

    warnings: list[str] = []
    bundle = load_bundle(config.bundle, next(iter(load_bundle_graphs(config.bundle))))
    manifest = bundle.manifest
    checkpoint = _reference_checkpoint(config, manifest, warnings)
    plan = bench_plan(config)
    formats, defaults = _formats(config, manifest, checkpoint)
    machine = machine_state(config.threads)
    _log(machine["cpu_line"])
    started = time.time()
    reference = _measure(TorchFormat(checkpoint), plan, manifest)
    runs = [reference] + [_measure(f, plan, manifest) for f in formats]
    rows, agreements = [], {}
    for run in runs:
        row, agreement = summarize_run(run, None if run is reference else reference, plan)
        rows.append(row)
        if agreement is not None:
            agreements[run.name] = agreement
            warnings += agreement.warnings(run.name, include_reference=False)
    reference_empty = empty_masks_line("pytorch", rows[0]["empty"]["empty_predictions"], plan.num_prompts, "reference")
    warnings = ([reference_empty] if reference_empty else []) + warnings
    report = {
        "bundle": str(config.bundle), "reference": checkpoint, "config": config.to_dict(),
        "images": len(plan), "prompts": plan.num_prompts, "plan": plan.describe(), "formats": rows,
        "framing": (manifest.get("model") or {}).get("framing"),
        "warnings": warnings, "environment": toolchain_environment(), "started": started,
        "machine": {**machine, "load_average_end": load_average(), "notes": cpu_notes(machine["cpu"])},
        "defaults": defaults,
        "note": "wall-clock latencies on a shared host (other processes may have been running); compare formats "
                "within one report, measured side by side in one run",
        "command": " ".join(sys.argv), "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
    }
    missed = check_floors(rows, config, agreements)
    report["floors"] = {"min_iou": config.min_iou, "max_latency_ms": config.max_latency_ms,
                        "max_encoder_ms": config.max_encoder_ms, "missed": missed, "passed": not missed}
    if config.out:
        report["files"] = write_report(report, config.out)
    return report


def load_bundle_graphs(bundle_dir) -> dict:
    """The manifest's graph sets (validated), for choosing which to run."""
    return read_manifest(bundle_dir)["graphs"]
