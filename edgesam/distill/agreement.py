"""How closely students answer like their teacher on held-out images, and how well each does the task.

Everything is scored by `edgesam.eval` (one scorer, masks only through each model's predictor), so
the figures cover whatever framing the models use and the task mIoU equals `edgesam eval`'s on the
same images. Labelled images get eval's prompt plan (one prompt per object, drawn from its mask);
images without labels get prompts placed at random (seeded by the image's class/stem), which only
agreement with the teacher can score. ROI-framed models cut their crop around a box: they take box
prompts only. Pairs where teacher and student both output nothing are left out of the mean IoU and
counted (`edgesam.eval.agreement`). The teacher answers each plan once for all students (e.g. the
distilled one and its untrained start).
"""
from __future__ import annotations

import numpy as np

from edgesam.data import Dataset, read_image
from edgesam.distill.views import random_boxes
from edgesam.eval import Agreement, ImagePrompts, PromptPlan, build_plan, compare_records, model_adapter, score
from edgesam.eval.plan import object_rng
from edgesam.eval.report import summarize_records
from edgesam_runtime.roi import WHOLE_IMAGE

PROMPT_KINDS = ("box", "point")
SOURCES = ("labelled", "random")  # prompts drawn from ground truth / placed at random on images without labels


def prompt_kinds(model) -> tuple[str, ...]:
    """ROI-framed models cut their crop around a box: they take no point-only prompts."""
    return ("box",) if getattr(model, "framing", WHOLE_IMAGE).roi else PROMPT_KINDS


def random_plan(data: Dataset, kind: str, seed: int, per_image: int, side: tuple[float, float]) -> PromptPlan:
    """`per_image` prompts placed at random on each image of `data` without labels (no ground truth).

    Boxes: sides log-uniform in `side` x the image's short side; points: uniform over the image.
    Each image's prompts depend only on the seed, the prompt kind and its class/stem.
    """
    items = []
    for index, record in enumerate(data.records):
        if record.labelled:
            continue
        h, w = read_image(record.image_path).shape[:2]
        rng = object_rng(seed, f"random {kind}", record.key, 0)
        if kind == "box":
            prompts = {"boxes": random_boxes(rng, (h, w), per_image, side)}
        else:
            xy = np.stack([rng.uniform(0, w - 1, per_image), rng.uniform(0, h - 1, per_image)], axis=1)
            prompts = {"points": xy[:, None].astype(np.float32), "labels": np.ones((per_image, 1), np.float32)}
        items.append(ImagePrompts(index, record.key, record.class_name, kind, (0,) * per_image, **prompts,
                                  ground_truth=False))
    return PromptPlan(data, kind, seed, 0.0, items)


def held_out_plans(held: Dataset, kinds, seed: int, per_image: int, side) -> dict[tuple[str, str], PromptPlan]:
    """(kind, source) -> plan: eval's plan on the labelled images, random prompts on the others."""
    plans = {}
    for kind in kinds:
        plans[kind, "labelled"] = build_plan(held, kind, seed)
        plans[kind, "random"] = random_plan(held, kind, seed, per_image, side)
    return {key: plan for key, plan in plans.items() if plan.items}


class TeacherAnswers:
    """The teacher's masks for every held-out prompt, scored once; students are compared against them
    (at each epoch of the mask stage, and in the final report)."""

    def __init__(self, teacher, held_out: Dataset, seed: int = 0, prompts_per_image: int = 4,
                 box_side: tuple[float, float] = (0.05, 0.6), kinds=None, progress: bool = False):
        self.kinds = tuple(k for k in prompt_kinds(teacher) if kinds is None or k in kinds)
        self.plans = held_out_plans(held_out, self.kinds, seed, prompts_per_image, box_side)
        self.images, self.progress = len(held_out), progress
        self.records = {key: score(model_adapter(teacher), plan, keep_masks=True, progress=self._bar("teacher", key))
                        for key, plan in self.plans.items()}

    def _bar(self, name: str, key: tuple[str, str]) -> str | None:
        return f"{name}: {key[0]} prompts, {key[1]}" if self.progress else None

    def compare(self, model, name: str = "student") -> tuple[dict[tuple[str, str], Agreement], dict | None]:
        """(agreement per (kind, source), task summary of the labelled box prompts or None)."""
        found, task = {}, None
        for key, plan in self.plans.items():
            records = score(model_adapter(model), plan, keep_masks=True, progress=self._bar(name, key))
            found[key] = compare_records(records, self.records[key])
            if key == ("box", "labelled"):
                task = summarize_records(records)
        return found, task

    def box_agreement(self, model) -> dict:
        """Agreement figures over every box prompt (what the mask stage keeps its best epoch by)."""
        return _kind_figures(self.compare(model)[0], "box")

    @property
    def teacher_task(self) -> dict | None:
        key = ("box", "labelled")
        return summarize_records(self.records[key]) if key in self.records else None


def agreement(teacher, students: dict, held_out: Dataset, seed: int = 0, prompts_per_image: int = 4,
              box_side: tuple[float, float] = (0.05, 0.6), progress: bool = False,
              answers: TeacherAnswers | None = None) -> dict:
    """Each student's masks vs the teacher's (box and point prompts); task mIoU of all on labelled images.

    `answers`: the teacher's, when already scored on the same held-out images with the same settings.
    """
    answers = answers or TeacherAnswers(teacher, held_out, seed, prompts_per_image, box_side, progress=progress)
    teacher_task = answers.teacher_task
    report = {"images": answers.images,
              "prompts": {f"{k} {s}": plan.num_prompts for (k, s), plan in answers.plans.items()},
              "teacher_task": teacher_task, "students": {}}
    for name, model in students.items():
        found, task = answers.compare(model, name)
        per_kind = {kind: _kind_figures(found, kind) if kind in answers.kinds else None for kind in PROMPT_KINDS}
        report["students"][name] = {**per_kind, "task": task, "task_box_miou": (task or {}).get("miou")}
    report["teacher_task_box_miou"] = (teacher_task or {}).get("miou")
    report["task_objects"] = (teacher_task or {}).get("n", 0)
    return report


def _kind_figures(found: dict[tuple[str, str], Agreement], kind: str) -> dict:
    """Agreement over every prompt of `kind`, and per source of the prompts."""
    parts = {source: found[kind, source] for source in SOURCES if (kind, source) in found}
    merged = _concatenated(list(parts.values()))
    return {**_figures(merged), "by_source": {source: _figures(a) for source, a in parts.items()}}


def _concatenated(parts: list[Agreement]) -> Agreement:
    return Agreement(sum((a.names for a in parts), []),
                     np.concatenate([a.ious for a in parts]) if parts else np.zeros(0),
                     np.concatenate([a.reference_empty for a in parts]) if parts else np.zeros(0, bool),
                     np.concatenate([a.prediction_empty for a in parts]) if parts else np.zeros(0, bool))


def _figures(a: Agreement) -> dict:
    """Agreement's figures with the teacher as the reference (task figures are reported apart)."""
    d = a.to_dict()
    return {"iou_vs_teacher": d["iou"], "prompts": d["prompts"], "teacher_empty": d["reference_empty"],
            "student_empty": d["prediction_empty"], "both_empty": d["both_empty"],
            "teacher_empty_share": d["reference_empty_share"], "teacher_empty_prompts": d["empty_references"],
            "student_empty_prompts": d["empty_predictions"]}
