"""Agreement of a model with a reference (another format, the unpruned model), prompt by prompt.

Two empty masks agree on nothing measurable: such a pair is left out of the mean IoU and counted.
An IoU floor is only judged when the reference answered (a non-empty mask) for at least
`MIN_NONEMPTY_REFERENCE_SHARE` of the prompts; otherwise it fails and names the empty references,
because "IoU 1.0 against a reference that outputs nothing" certifies a model that segments nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgesam_runtime import metrics

MIN_NONEMPTY_REFERENCE_SHARE = 0.9
NAMES_SHOWN = 6


@dataclass
class Agreement:
    names: list[str]  # one per prompt
    ious: np.ndarray  # (N,) NaN where both masks are empty
    reference_empty: np.ndarray  # (N,) bool
    prediction_empty: np.ndarray  # (N,) bool
    task: dict | None = None  # ground-truth mIoU of both sides: {"model": summary, "reference": summary}

    @property
    def prompts(self) -> int:
        return len(self.names)

    @property
    def nonempty_reference_share(self) -> float:
        return float(1.0 - self.reference_empty.mean()) if self.prompts else 0.0

    @property
    def mean_iou(self) -> float | None:
        return metrics.summarize(self.ious)["mean"]

    def empty_references(self) -> list[str]:
        return [n for n, e in zip(self.names, self.reference_empty) if e]

    def empty_predictions(self) -> list[str]:
        return [n for n, e in zip(self.names, self.prediction_empty) if e]

    def to_dict(self) -> dict:
        both = self.reference_empty & self.prediction_empty
        out = {"iou": metrics.summarize(self.ious), "prompts": self.prompts,
               "reference_empty": int(self.reference_empty.sum()), "prediction_empty": int(self.prediction_empty.sum()),
               "both_empty": int(both.sum()), "reference_empty_share": 1.0 - self.nonempty_reference_share,
               "prediction_empty_share": float(self.prediction_empty.mean()) if self.prompts else 0.0,
               "empty_references": self.empty_references(), "empty_predictions": self.empty_predictions()}
        if self.task is not None:
            out["task_iou"], out["reference_task_iou"] = self.task["model"], self.task["reference"]
        return out

    def floor_failure(self, floor: float, label: str, flag: str = "--min-iou") -> str | None:
        """Why `floor` on the mean IoU is not passed (None when it is)."""
        if self.prompts == 0:
            return f"{label}: no prompts were scored; an IoU floor needs prompts"
        if self.nonempty_reference_share < MIN_NONEMPTY_REFERENCE_SHARE:
            return f"{label}: {reference_empty_reason(self.empty_references(), self.prompts)}"
        mean = self.mean_iou
        if mean is None or mean < floor:
            shown = "undefined" if mean is None else f"{mean:.4g}"
            return f"{label}: iou_vs_reference.mean {shown} < {flag} {floor:g}"
        return None

    def warnings(self, label: str, include_reference: bool = True) -> list[str]:
        """Lines worth a reader's attention even when no floor is set: the empty masks, named."""
        out = [empty_masks_line(label, self.empty_references(), self.prompts, "reference")] if include_reference else []
        out.append(empty_masks_line(label, self.empty_predictions(), self.prompts, "predicted"))
        return [line for line in out if line]


def empty_masks_line(label: str, empty: list[str], prompts: int, what: str) -> str | None:
    """'int8: 3 of 12 predicted masks are empty: a#0, b#1, c#0' (None when there are none)."""
    if not empty:
        return None
    return f"{label}: {len(empty)} of {prompts} {what} masks are empty: {name_list(empty)}"


def name_list(names: list[str], limit: int = NAMES_SHOWN) -> str:
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" (+{more} more)" if more > 0 else "")


def reference_empty_reason(empty: list[str], prompts: int) -> str:
    """'12 of 12 reference masks are empty (...)': why an IoU against this reference proves nothing."""
    why = "the reference outputs nothing" if len(empty) == prompts else "the reference found nothing for"
    return (f"{len(empty)} of {prompts} reference masks are empty ({why}: {name_list(empty)}); an IoU gate needs "
            f">= {MIN_NONEMPTY_REFERENCE_SHARE:.0%} non-empty references")


def mask_agreement(pred, reference, names: list[str] | None = None) -> Agreement:
    """Agreement of N predicted masks with N reference masks: two (N, ...) arrays, or two sequences of
    masks whose shapes may differ between pairs (images of different sizes)."""
    if len(pred) != len(reference):
        raise ValueError(f"mask_agreement: {len(pred)} predicted masks vs {len(reference)} reference masks")
    pairs = list(zip(pred, reference))
    names = list(names) if names is not None else [f"mask {i}" for i in range(len(pairs))]
    ious = np.array([metrics.mask_iou(p, r) for p, r in pairs], np.float64)
    reference_empty = np.array([not np.asarray(r, bool).any() for _, r in pairs], bool)
    prediction_empty = np.array([not np.asarray(p, bool).any() for p, _ in pairs], bool)
    return Agreement(names, ious, reference_empty, prediction_empty)


def compare_records(records, reference) -> Agreement:
    """Agreement of two record lists scored on the same plan with `keep_masks`, plus both task mIoUs."""
    names = [r.name for r in records]
    if names != [r.name for r in reference]:
        raise ValueError("compare_records: the two record lists were not scored on the same prompt plan")
    if any(r.mask is None for r in list(records) + list(reference)):
        raise ValueError("compare_records: score both sides with keep_masks=True")
    agreement = mask_agreement([r.mask for r in records], [r.mask for r in reference], names)
    agreement.task = {"model": metrics.summarize([r.iou for r in records]),
                      "reference": metrics.summarize([r.iou for r in reference])}
    return agreement
