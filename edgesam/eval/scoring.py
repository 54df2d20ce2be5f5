"""The one scorer: a predictor (through its adapter) over a prompt plan -> one record per prompt.

Every accuracy figure of the project (eval, training validation, prune, bench/check, the pipeline
report) is a summary of these records, so they agree whenever model, data, split and seed agree.
Masks are scored at the original image resolution against the ground-truth object they prompt.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from tqdm import tqdm

from edgesam_runtime import metrics
from edgesam.eval.plan import ImagePrompts, PromptPlan

SIZE_BUCKETS = (("small", 32 ** 2), ("medium", 96 ** 2), ("large", math.inf))  # COCO's, in original pixels
NO_GROUND_TRUTH = "no ground truth"  # the bucket of a prompt placed without labels


def size_bucket(area: int) -> str:
    return next(name for name, limit in SIZE_BUCKETS if area < limit)


@dataclass
class PromptRecord:
    """The answer to one prompt, scored against its ground-truth object."""

    key: str  # class/stem of the image
    object: int  # index of the object in the image
    class_name: str
    prompt: str  # box | point
    area: int  # ground-truth pixels (0 for a prompt without ground truth)
    bucket: str  # small | medium | large | no ground truth
    iou: float  # vs ground truth; NaN only when both masks are empty
    dice: float
    pred_area: int
    pred_empty: bool
    gt_empty: bool  # False for a prompt without ground truth
    bf: float | None = None  # boundary F-score (None when boundary figures are off)
    hd95: float | None = None
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)  # kept for reference comparisons

    @property
    def name(self) -> str:
        return f"{self.key}#{self.object}"

    def to_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k != "mask"}


def score_masks(item: ImagePrompts, pred: np.ndarray, gt: np.ndarray | None, boundary: bool = False,
                keep_masks: bool = False) -> list[PromptRecord]:
    """Records of one image: `pred` and `gt` are (K, H, W), one mask per prompt of `item`.

    `gt` None (prompts without ground truth): the records carry the prediction only (IoU and Dice
    undefined), for `compare_records` against a reference scored on the same prompts.
    """
    pred = np.asarray(pred, bool)
    if gt is None:
        return [PromptRecord(item.key, k, item.class_name, item.kind, 0, NO_GROUND_TRUTH, math.nan, math.nan,
                             int(p.sum()), bool(e), False, None, None, p.copy() if keep_masks else None)
                for k, (p, e) in enumerate(zip(pred, metrics.is_empty(pred)))]
    gt = np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f"{item.key}: predicted masks {pred.shape} do not match the ground truth {gt.shape}")
    ious = metrics.batch_iou(pred, gt)
    pred_empty, gt_empty = metrics.is_empty(pred), metrics.is_empty(gt)
    out = []
    for k, (p, g) in enumerate(zip(pred, gt)):
        area = item.areas[k]
        out.append(PromptRecord(
            item.key, k, item.class_name, item.kind, area, size_bucket(area), float(ious[k]), metrics.dice(p, g),
            int(p.sum()), bool(pred_empty[k]), bool(gt_empty[k]),
            metrics.boundary_fscore(p, g) if boundary else None, metrics.hd95(p, g) if boundary else None,
            p.copy() if keep_masks else None))
    return out


OnCall = Callable[[ImagePrompts, dict, dict], None]  # (item, encode timings, segment timings)


def score(predictor, plan: PromptPlan, *, boundary: bool = False, keep_masks: bool = False,
          on_call: OnCall | None = None, progress: str | None = None) -> list[PromptRecord]:
    """Every prompt of `plan` answered by `predictor` (a `MaskPredictor` adapter), one record each.

    `keep_masks` keeps each predicted mask on its record (for comparing with a reference);
    `on_call` sees each image's timings (bench); `progress` names a progress bar.
    """
    records: list[PromptRecord] = []
    for item, sample in _maybe_progress(plan.samples(), progress, len(plan)):
        handle, encode_timings = predictor.encode(sample.image)
        masks, segment_timings = predictor.segment(handle, item)
        if on_call is not None:
            on_call(item, encode_timings, segment_timings)
        records += score_masks(item, masks, sample.masks if item.ground_truth else None, boundary, keep_masks)
    return records


def _maybe_progress(it, desc: str | None, total: int):
    if not desc:
        return it

    return tqdm(it, desc=desc, total=total, leave=False)
