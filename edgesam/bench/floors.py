"""Release floors: which formats missed `--min-iou`, `--max-latency-ms`, `--max-encoder-ms`, and why.

The IoU floor is judged by `edgesam.eval.agreement`: it fails when too many reference masks are
empty to say anything (naming them), and otherwise compares the mean IoU over the prompts.
"""
from __future__ import annotations

LATENCY_FLOORS = (
    # (config field, figure, flag)
    ("max_latency_ms", "decoder_per_prompt_ms.p95", "--max-latency-ms"),
    ("max_encoder_ms", "encoder_ms.p95", "--max-encoder-ms"),
)


def _figure(row: dict, dotted: str):
    value = row
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _gated(rows: list[dict]) -> list[dict]:
    """The formats a floor applies to: the PyTorch reference itself is not gated, skipped formats cannot be."""
    return [row for row in rows if not row.get("skipped") and row["format"] != "pytorch"]


def check_floors(rows: list[dict], config, agreements: dict) -> list[str]:
    """One readable line per missed floor; `agreements` maps each format to its `Agreement` with the reference."""
    missed = []
    if config.min_iou is not None:
        for row in _gated(rows):
            failure = agreements[row["format"]].floor_failure(config.min_iou, row["format"], "--min-iou")
            if failure:
                missed.append(failure)
    for field, figure, flag in LATENCY_FLOORS:
        limit = getattr(config, field)
        if limit is None:
            continue
        for row in _gated(rows):
            value = _figure(row, figure)
            if value is not None and value > limit:
                missed.append(f"{row['format']}: {figure} {value:.4g} > {flag} {limit:g}")
    return missed
