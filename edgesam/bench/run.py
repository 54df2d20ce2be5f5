"""`run_bench(config)`: every format of a bundle beside the PyTorch reference, on the same prompts."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from edgesam.bench.config import BenchConfig
from edgesam.bench.floors import check_floors
from edgesam.bench.formats import RuntimeRunner, TorchRunner
from edgesam.bench.measure import FormatRun, run_format, summarize_run
from edgesam.bench.plan import build_plan
from edgesam.bench.report import write_report
from edgesam.runtime.bundle import load_bundle
from edgesam.runtime.errors import BackendError
from edgesam.utils.files import sha256_file


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


def _runners(config: BenchConfig, manifest: dict, checkpoint: str) -> list:
    sets = config.graph_sets or tuple(manifest["graphs"])
    runners = [RuntimeRunner(config.bundle, name, config.threads) for name in sets]
    fast = _fast_runner(config, checkpoint)
    return runners + ([fast] if fast else [])


def _fast_runner(config: BenchConfig, checkpoint: str):
    if config.torch_fast == "off":
        return None
    import torch

    cuda = torch.cuda.is_available()
    if config.torch_fast == "auto" and not cuda:
        return None
    from edgesam.bench.fast_path import FastPathConfig

    fast = FastPathConfig(dtype=config.torch_fast_dtype, compile=config.torch_fast_compile)
    return TorchRunner(checkpoint, fast, "cuda" if cuda else "cpu")


def _measure(runner, plan, manifest) -> FormatRun:
    info = runner.describe(manifest)
    _log(f"{runner.name}: {len(plan)} images")
    try:
        return run_format(runner, plan, info)
    except BackendError as exc:  # e.g. an engine for another GPU: report it, measure the rest
        return FormatRun(runner.name, info, skipped=str(exc))


def run_bench(config: BenchConfig) -> dict:
    """Measure, score, check floors and (with `config.out`) write the report; returns it as a dict."""
    from edgesam.envinfo import environment

    warnings: list[str] = []
    bundle = load_bundle(config.bundle, next(iter(load_bundle_graphs(config.bundle))))
    manifest = bundle.manifest
    checkpoint = _reference_checkpoint(config, manifest, warnings)
    plan = build_plan(config.data, config.max_images, config.prompt, config.seed, config.box_jitter,
                      config.split, config.val_fraction, config.split_seed)
    started = time.time()
    reference = _measure(TorchRunner(checkpoint), plan, manifest)
    runs = [reference] + [_measure(r, plan, manifest) for r in _runners(config, manifest, checkpoint)]
    rows = [summarize_run(run, None if run is reference else reference, plan) for run in runs]
    report = {
        "bundle": str(config.bundle), "reference": checkpoint, "config": config.to_dict(),
        "images": len(plan), "prompts": int(sum(i.num_prompts for i in plan)), "formats": rows,
        "warnings": warnings, "environment": environment(), "started": started,
        "note": "wall-clock latencies on a shared host (other processes may have been running); compare formats "
                "within one report, measured side by side in one run",
        "command": " ".join(sys.argv), "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
    }
    missed = check_floors(rows, config)
    report["floors"] = {"min_iou": config.min_iou, "max_latency_ms": config.max_latency_ms,
                        "max_encoder_ms": config.max_encoder_ms, "missed": missed, "passed": not missed}
    if config.out:
        report["files"] = write_report(report, config.out)
    return report


def load_bundle_graphs(bundle_dir) -> dict:
    """The manifest's graph sets (validated), for choosing which to run."""
    from edgesam.manifest import read_manifest

    return read_manifest(bundle_dir)["graphs"]
