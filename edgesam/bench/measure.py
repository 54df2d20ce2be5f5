"""Time one format over the plan and collect its masks; accuracy is scored afterwards."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from edgesam.metrics import batch_iou, summarize


@dataclass
class FormatRun:
    """Raw measurements of one format (masks stay out of the JSON)."""

    name: str
    info: dict
    cold_start_ms: float = float("nan")
    wall_s: float = float("nan")
    preprocess_ms: list = field(default_factory=list)
    encoder_ms: list = field(default_factory=list)
    prompt_ms: list = field(default_factory=list)  # per image call
    decoder_ms: list = field(default_factory=list)  # per image call
    postprocess_ms: list = field(default_factory=list)  # per image call
    per_prompt_ms: list = field(default_factory=list)  # (prompt + decoder + postprocess) / prompts, per call
    masks: list = field(default_factory=list)  # per image (K, H, W) bool
    skipped: str | None = None


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


def run_format(runner, plan, info: dict) -> FormatRun:
    """Cold start (open + first image), then every image of the plan warm, in order."""
    run = FormatRun(runner.name, info)
    start = time.perf_counter()
    runner.open()
    handle, _ = runner.encode(plan[0].image)
    runner.segment(handle, plan[0])
    run.cold_start_ms = _ms(start)
    start = time.perf_counter()
    for item in plan:
        handle, enc = runner.encode(item.image)
        masks, dec = runner.segment(handle, item)
        run.preprocess_ms.append(enc["preprocess_ms"])
        run.encoder_ms.append(enc["encoder_ms"])
        run.prompt_ms.append(dec["prompt_ms"])
        run.decoder_ms.append(dec["decoder_ms"])
        run.postprocess_ms.append(dec["postprocess_ms"])
        run.per_prompt_ms.append((dec["prompt_ms"] + dec["decoder_ms"] + dec["postprocess_ms"]) / item.num_prompts)
        run.masks.append(masks)
    run.wall_s = time.perf_counter() - start
    return run


def _pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def summarize_run(run: FormatRun, reference: FormatRun | None, plan) -> dict:
    """The figures of one format: size, accuracy against reference and ground truth, latencies."""
    row = {"format": run.name, **run.info}
    if run.skipped:
        return {**row, "skipped": run.skipped}
    ref_iou = [] if reference is None else np.concatenate(
        [batch_iou(m, r) for m, r in zip(run.masks, reference.masks)]).tolist()
    gt_iou = np.concatenate([batch_iou(m, item.gt) for m, item in zip(run.masks, plan)]).tolist()
    host = np.add(run.preprocess_ms, np.add(run.prompt_ms, run.postprocess_ms))
    row.update({
        "images": len(plan), "prompts": int(sum(item.num_prompts for item in plan)),
        "iou_vs_reference": summarize(ref_iou) if ref_iou else None,
        "task_iou": summarize(gt_iou),
        "encoder_ms": {"p50": _pct(run.encoder_ms, 50), "p95": _pct(run.encoder_ms, 95)},
        "decoder_per_prompt_ms": {"p50": _pct(run.per_prompt_ms, 50), "p95": _pct(run.per_prompt_ms, 95)},
        "decoder_call_ms": {"p50": _pct(run.decoder_ms, 50), "p95": _pct(run.decoder_ms, 95)},
        "host_ms": {"preprocess_mean": float(np.mean(run.preprocess_ms)),
                    "postprocess_mean": float(np.mean(np.add(run.prompt_ms, run.postprocess_ms))),
                    "fraction_of_encoder": float(host.sum() / max(np.sum(run.encoder_ms), 1e-9))},
        "images_per_s": len(plan) / run.wall_s,
        "cold_start_ms": run.cold_start_ms,
    })
    return row
