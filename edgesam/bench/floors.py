"""Release floors: which figures of which formats missed `--min-iou`, `--max-latency-ms`, `--max-encoder-ms`."""
from __future__ import annotations

FLOORS = (
    # (config field, figure, comparison, flag)
    ("min_iou", "iou_vs_reference.mean", "min", "--min-iou"),
    ("max_latency_ms", "decoder_per_prompt_ms.p95", "max", "--max-latency-ms"),
    ("max_encoder_ms", "encoder_ms.p95", "max", "--max-encoder-ms"),
)


def _figure(row: dict, dotted: str):
    value = row
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def check_floors(rows: list[dict], config) -> list[str]:
    """One readable line per missed floor; the PyTorch reference itself is not gated."""
    missed = []
    for field, figure, kind, flag in FLOORS:
        limit = getattr(config, field)
        if limit is None:
            continue
        for row in rows:
            if row.get("skipped") or row["format"] == "pytorch":
                continue
            value = _figure(row, figure)
            if value is None:
                continue
            if (kind == "min" and value < limit) or (kind == "max" and value > limit):
                sign = "<" if kind == "min" else ">"
                missed.append(f"{row['format']}: {figure} {value:.4g} {sign} {flag} {limit:g}")
    return missed
