"""How closely students answer like their teacher on held-out images, and how well each does the task.

Masks come only through the reference predictor (`set_image` once per image, then `predict`), so the
figures cover whatever framing the models use. Prompts per labelled image are those `edgesam eval`
draws (same function, same seeds), so the task mIoU here equals `edgesam eval`'s on the same split;
unlabelled images get random boxes and points (ROI-framed models take boxes only). Mask IoU against the teacher counts only prompts
where the teacher's mask is non-empty (two empty masks agree trivially); the empty share is reported.
Several students (e.g. the distilled one and its untrained start) share one teacher pass per image.
"""
from __future__ import annotations

import numpy as np

from edgesam.data import Dataset
from edgesam.distill.views import random_boxes
from edgesam.evaluate import draw_eval_prompts
from edgesam.metrics import batch_iou, summarize
from edgesam.predict import SamReferencePredictor
from edgesam.roi import WHOLE_IMAGE

PROMPT_KINDS = ("box", "point")
SOURCES = ("labelled", "random")  # prompts drawn from ground truth / at random on unlabelled images
_UNLABELLED_STREAM = 1_000_003  # rng component of unlabelled images' random prompts


def prompts_for(sample, index: int, seed: int, count: int, side: tuple[float, float]) -> dict:
    """{"box": (K, 4), "point": (K, 1, 2)} in original pixels, plus whether they come from labels."""
    if sample.num_objects:
        boxes, _ = draw_eval_prompts(sample.masks, "box", np.random.default_rng([seed, index]), 0.0)
        _, points = draw_eval_prompts(sample.masks, "point", np.random.default_rng([seed, index]), 0.0)
        return {"box": boxes, "point": points, "labelled": True}
    rng = np.random.default_rng([seed, _UNLABELLED_STREAM, index])
    boxes = random_boxes(rng, sample.image.shape[:2], count, side)
    h, w = sample.image.shape[:2]
    points = np.stack([rng.uniform(0, w - 1, count), rng.uniform(0, h - 1, count)], axis=1)[:, None].astype(np.float32)
    return {"box": boxes, "point": points, "labelled": False}


def prompt_kinds(model) -> tuple[str, ...]:
    """ROI-framed models cut their crop around a box: they take no point-only prompts."""
    return ("box",) if getattr(model, "framing", WHOLE_IMAGE).roi else PROMPT_KINDS


def answers(predictor: SamReferencePredictor, image: np.ndarray, prompts: dict, kinds=PROMPT_KINDS) -> dict:
    """(K, H, W) masks per prompt kind, one encoder pass (points: best of the 3 multimask outputs, as eval)."""
    predictor.set_image(image)
    out = {"box": predictor.predict(boxes=prompts["box"]).masks[:, 0]}
    if "point" in kinds:
        points = prompts["point"]
        labels = np.ones(points.shape[:2], np.float32)
        out["point"] = predictor.predict(point_coords=points, point_labels=labels, multimask=True).best().masks[:, 0]
    return out


def agreement(teacher, students: dict, held_out: Dataset, seed: int = 0, prompts_per_image: int = 4,
              box_side: tuple[float, float] = (0.05, 0.6), progress: bool = False) -> dict:
    """Each student's masks vs the teacher's (box and point prompts); task IoU of all on labelled images."""
    kinds = prompt_kinds(teacher)
    t_pred = SamReferencePredictor(teacher)
    s_preds = {name: SamReferencePredictor(model) for name, model in students.items()}
    tally = {(name, k, src): _empty_tally() for name in students for k in PROMPT_KINDS for src in SOURCES}
    task = {name: [] for name in ["teacher", *students]}
    labelled_index = unlabelled_index = 0
    indices = range(len(held_out))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="students vs teacher", unit="img")
    for i in indices:
        sample = held_out.load(i)
        if held_out.records[i].labelled:  # index within the labelled images: eval's prompt seeds
            index, labelled_index = labelled_index, labelled_index + 1
            if not sample.num_objects:
                continue
        else:
            index, unlabelled_index = unlabelled_index, unlabelled_index + 1
        prompts = prompts_for(sample, index, seed, prompts_per_image, box_side)
        source = SOURCES[0] if prompts["labelled"] else SOURCES[1]
        t = answers(t_pred, sample.image, prompts, kinds)
        if prompts["labelled"]:
            task["teacher"] += batch_iou(t["box"], sample.masks).tolist()
        for name, predictor in s_preds.items():
            s = answers(predictor, sample.image, prompts, kinds)
            for kind in kinds:
                _tally(tally[name, kind, source], t[kind], s[kind])
            if prompts["labelled"]:
                task[name] += batch_iou(s["box"], sample.masks).tolist()
    report = {"images": len(held_out), "students": {}}
    for name in students:
        report["students"][name] = {kind: _merged(tally, name, kind) if kind in kinds else None for kind in PROMPT_KINDS}
        report["students"][name]["task_box_miou"] = float(np.mean(task[name])) if task[name] else None
    report["teacher_task_box_miou"] = float(np.mean(task["teacher"])) if task["teacher"] else None
    report["task_objects"] = len(task["teacher"])
    return report


def _merged(tally: dict, name: str, kind: str) -> dict:
    parts = [tally[name, kind, src] for src in SOURCES]
    merged = {key: sum((p[key] for p in parts), [] if key == "ious" else 0) for key in parts[0]}
    return {**_summary(merged), "by_source": {src: _summary(tally[name, kind, src]) for src in SOURCES}}


def _empty_tally() -> dict:
    return {"ious": [], "teacher_empty": 0, "student_empty": 0, "prompts": 0}


def _tally(t: dict, teacher_masks: np.ndarray, student_masks: np.ndarray) -> None:
    t_any = teacher_masks.reshape(len(teacher_masks), -1).any(1)
    s_any = student_masks.reshape(len(student_masks), -1).any(1)
    t["prompts"] += len(t_any)
    t["teacher_empty"] += int((~t_any).sum())
    t["student_empty"] += int((t_any & ~s_any).sum())
    if t_any.any():
        t["ious"] += batch_iou(student_masks[t_any], teacher_masks[t_any]).tolist()


def _summary(t: dict) -> dict:
    return {"iou_vs_teacher": summarize(t["ious"]), "prompts": t["prompts"], "teacher_empty": t["teacher_empty"],
            "teacher_empty_share": t["teacher_empty"] / t["prompts"] if t["prompts"] else None,
            "student_empty_where_teacher_not": t["student_empty"]}
