"""Time one format over the prompt plan while the one scorer collects its per-prompt records.

Each format is warmed until its timings settle before the plan is timed: one warm-up call is not
enough (ONNX Runtime's first calls after one warm-up ran ~1.8x slow on a 2-core EPYC), and a ratio
between two formats measured in different states of warm-up is an artefact. The warm-up calls and
the spread of the timed calls are reported with the figures.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field


from edgesam.eval.agreement import Agreement, compare_records
from edgesam.eval.plan import PromptPlan
from edgesam.eval.scoring import score
from edgesam_runtime.metrics import summarize
from edgesam_runtime.timing import ms_since, percentile, spread, warm_until_settled


@dataclass
class FormatRun:
    """Raw measurements of one format (records keep their masks for the reference comparison)."""

    name: str
    info: dict
    cold_start_ms: float = float("nan")
    calls: list = field(default_factory=list)  # per image: {"prompts", "encode": {...}, "segment": {...}} in ms
    records: list = field(default_factory=list)
    skipped: str | None = None
    warmup: dict = field(default_factory=dict)  # calls, settled, their ms (`edgesam_runtime.timing.warm_until_settled`)


def run_format(fmt, plan: PromptPlan, info: dict, warm: bool = True) -> FormatRun:
    """Cold start (open + first image), warm-up until settled, then every image of the plan, in order."""
    run = FormatRun(fmt.name, info)
    item, sample = next(plan.samples())
    start = time.perf_counter()
    predictor = fmt.open()
    run.info.update(getattr(fmt, "opened", {}))  # e.g. the precision the backend actually runs in

    def first_image():
        handle, _ = predictor.encode(sample.image)
        predictor.segment(handle, item)

    first_image()
    run.cold_start_ms = ms_since(start)
    if warm:
        run.warmup = warm_until_settled(first_image)
        run.warmup["prompt_counts"] = warm_prompt_counts(predictor, plan)
    run.records = score(predictor, plan, keep_masks=True, on_call=lambda it, enc, seg: run.calls.append(
        {"prompts": it.num_prompts, "encode": enc, "segment": seg}))
    return run


def warm_prompt_counts(predictor, plan: PromptPlan) -> list[int]:
    """One call on the first image of each prompt count in the plan; returns the counts. A backend may
    compile per call shape (the runtime's OpenVINO backend compiles a static copy of a graph at a shape's
    first call, 0.2-0.4 s for the ROI model), which a line running steadily paid long ago: left to the timed
    calls, it lands in their p95 and says nothing about the line."""
    first_of_count = {}
    for item in plan.items:
        first_of_count.setdefault(item.num_prompts, item)
    for item in first_of_count.values():
        handle, _ = predictor.encode(plan.dataset.load(item.index).image)
        predictor.segment(handle, item)
    return sorted(first_of_count)


def _encoder_ms(call: dict) -> float:
    """The encoder's own time where the predictor reports it (plus encoding done per prompt, e.g. per crop)."""
    enc, seg = call["encode"], call["segment"]
    return enc.get("encoder_ms", enc["encode_ms"]) + seg.get("encoder_ms", 0.0)


def _decode_ms(call: dict) -> float:
    """The segment call without any encoder work it did (prompt prep + decoder + mask upscaling)."""
    return call["segment"]["segment_ms"] - call["segment"].get("encoder_ms", 0.0)


def _host_ms(call: dict) -> float | None:
    """Pre- and post-processing on the host, when the predictor reports its parts (the runtime does)."""
    parts = [call["encode"].get("preprocess_ms"), call["segment"].get("prompt_ms"), call["segment"].get("postprocess_ms")]
    return None if any(p is None for p in parts) else sum(parts)


def timing_figures(run: FormatRun) -> dict:
    calls = run.calls
    encoder = [_encoder_ms(c) for c in calls]
    host = [_host_ms(c) for c in calls]
    wall_s = sum(c["encode"].get("encode_ms", 0.0) + c["segment"]["segment_ms"] for c in calls) / 1e3
    return {
        "encoder_ms": {"p50": percentile(encoder, 50), "p95": percentile(encoder, 95), "spread": spread(encoder)},
        "decoder_per_prompt_ms": {"p50": percentile([_decode_ms(c) / c["prompts"] for c in calls], 50),
                                  "p95": percentile([_decode_ms(c) / c["prompts"] for c in calls], 95)},
        "decoder_call_ms": {"p50": percentile([c["segment"].get("decoder_ms", _decode_ms(c)) for c in calls], 50),
                            "p95": percentile([c["segment"].get("decoder_ms", _decode_ms(c)) for c in calls], 95)},
        "host_ms": {"fraction_of_encoder": None if None in host else float(sum(host) / max(sum(encoder), 1e-9))},
        "images_per_s": len(calls) / wall_s if wall_s > 0 else None,
        "cold_start_ms": run.cold_start_ms,
        "warmup": run.warmup,
    }


def accuracy_figures(run: FormatRun, reference: FormatRun | None) -> tuple[dict, Agreement | None]:
    """Task IoU against ground truth, empty masks, and (for a format) agreement with the reference."""
    names = [r.name for r in run.records if r.pred_empty]
    figures = {"task_iou": summarize([r.iou for r in run.records]),
               "empty": {"prediction": len(names), "prediction_share": len(names) / max(len(run.records), 1),
                         "empty_predictions": names}}
    if reference is None:
        return {**figures, "iou_vs_reference": None}, None
    agreement = compare_records(run.records, reference.records)
    a = agreement.to_dict()
    figures["iou_vs_reference"] = a["iou"]
    figures["empty"].update(reference=a["reference_empty"], both=a["both_empty"],
                            reference_share=a["reference_empty_share"], empty_references=a["empty_references"])
    return figures, agreement


def summarize_run(run: FormatRun, reference: FormatRun | None, plan: PromptPlan) -> tuple[dict, Agreement | None]:
    """The row of one format (size, accuracy, latencies) and its agreement with the reference."""
    row = {"format": run.name, **run.info}
    if run.skipped:
        return {**row, "skipped": run.skipped}, None
    accuracy, agreement = accuracy_figures(run, reference)
    row.update({"images": len(plan), "prompts": plan.num_prompts, **accuracy, **timing_figures(run)})
    return row, agreement
