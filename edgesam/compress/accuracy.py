"""Accuracy of a pruned model: its masks against the unpruned model's, and both against ground truth.

Both models answer the same prompt plan (tight boxes around the ground-truth objects, SAM's standard
box evaluation) through the reference predictor, scored by `edgesam.eval` like every other figure.
"""
from __future__ import annotations

from edgesam.eval import build_plan, compare_records, model_adapter, score
from edgesam.eval.agreement import empty_masks_line, reference_empty_reason, MIN_NONEMPTY_REFERENCE_SHARE


def unpruned_reference(teacher, dataset, max_images: int | None = None, seed: int = 0) -> tuple:
    """(plan, records) of the unpruned model's masks on the evaluation set (computed once, reused per student)."""
    plan = build_plan(dataset, "box", seed, max_images=max_images)
    if not plan.items:
        raise ValueError(f"accuracy: the evaluation set {dataset.root} has no labelled objects")
    return plan, score(model_adapter(teacher), plan, keep_masks=True)


def agreement_with_unpruned(student, reference: tuple) -> dict:
    """Mask IoU of `student` vs the unpruned model (empty pairs left out and counted), and task IoU of both."""
    plan, teacher_records = reference
    agreement = compare_records(score(model_adapter(student), plan, keep_masks=True), teacher_records)
    a = agreement.to_dict()
    return {"iou_vs_unpruned": a["iou"], "task_iou": a["task_iou"], "unpruned_task_iou": a["reference_task_iou"],
            "empty": {k: a[k] for k in ("prompts", "reference_empty", "prediction_empty", "both_empty",
                                        "reference_empty_share", "empty_references", "empty_predictions")},
            "images": len(plan)}


def _f(value, digits=4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def accuracy_line(acc: dict) -> str:
    """'mask IoU vs unpruned 0.9612 (p5 0.881), task mIoU 0.71 (unpruned 0.72), empty ref 0/12, pred 1/12, 12 prompts'."""
    iou, empty = acc["iou_vs_unpruned"], acc.get("empty") or {}
    return (f"mask IoU vs unpruned {_f(iou['mean'])} (p5 {_f(iou['p5'], 3)}), task mIoU {_f(acc['task_iou']['mean'])} "
            f"(unpruned {_f(acc['unpruned_task_iou']['mean'])}), empty masks: unpruned {empty.get('reference_empty', '?')}"
            f"/{empty.get('prompts', '?')}, pruned {empty.get('prediction_empty', '?')}/{empty.get('prompts', '?')}")


def accuracy_warnings(acc: dict, stage: str) -> list[str]:
    """Why an IoU vs unpruned says little (the unpruned model outputs nothing), and the pruned model's empty masks."""
    empty = acc.get("empty") or {}
    refs, preds, prompts = empty.get("empty_references", []), empty.get("empty_predictions", []), empty.get("prompts", 0)
    out = []
    if prompts and 1 - len(refs) / prompts < MIN_NONEMPTY_REFERENCE_SHARE:
        out.append(f"{stage}: {reference_empty_reason(refs, prompts)}")
    else:
        out.append(empty_masks_line(stage, refs, prompts, "unpruned"))
    out.append(empty_masks_line(stage, preds, prompts, "pruned"))
    return [line for line in out if line]
