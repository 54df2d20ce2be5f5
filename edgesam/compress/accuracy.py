"""Accuracy of a pruned model: its masks against the unpruned model's, and against ground truth.

Box prompts are the tight boxes of the ground-truth objects (SAM's standard box evaluation); both
models answer through the reference predictor, so geometry is the one the runtime uses.
"""
from __future__ import annotations

import numpy as np

from edgesam.data import tight_box
from edgesam.metrics import batch_iou, summarize
from edgesam.predict import SamReferencePredictor

MAX_OBJECTS = 16  # per image: bounds the time of images with many small regions


def reference_masks(teacher, dataset, max_images: int | None = None) -> list[dict]:
    """The teacher's box-prompted masks on each labelled image (computed once, reused per student)."""
    predictor = SamReferencePredictor(teacher)
    out = []
    count = len(dataset) if max_images is None else min(max_images, len(dataset))
    for i in range(count):
        sample = dataset.load(i)
        gt = sample.masks[: MAX_OBJECTS]
        gt = gt[gt.reshape(len(gt), -1).any(axis=1)] if len(gt) else gt
        if len(gt) == 0:
            continue
        boxes = np.stack([tight_box(m) for m in gt])
        predictor.set_image(sample.image)
        masks = predictor.predict(boxes=boxes).masks[:, 0]
        out.append({"index": i, "stem": sample.stem, "class": sample.class_name, "boxes": boxes, "gt": gt, "teacher": masks})
    if not out:
        raise ValueError("accuracy: the evaluation set has no labelled objects")
    return out


def mask_agreement(student, reference: list[dict], dataset) -> dict:
    """Mask IoU of `student` vs the teacher's masks, and task IoU of both vs ground truth."""
    predictor = SamReferencePredictor(student)
    vs_teacher, task, teacher_task = [], [], []
    for ref in reference:
        predictor.set_image(dataset.load(ref["index"]).image)
        masks = predictor.predict(boxes=ref["boxes"]).masks[:, 0]
        vs_teacher += batch_iou(masks, ref["teacher"]).tolist()
        task += batch_iou(masks, ref["gt"]).tolist()
        teacher_task += batch_iou(ref["teacher"], ref["gt"]).tolist()
    return {"iou_vs_unpruned": summarize(vs_teacher), "task_iou": summarize(task),
            "unpruned_task_iou": summarize(teacher_task), "images": len(reference)}
