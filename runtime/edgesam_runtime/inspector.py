"""`Inspector`: from a frame and its defect prompts to a decision per defect and per part (the verdict API).

    from edgesam_runtime.inspector import DefectPrompt, Inspector
    inspector = Inspector.open("bundle/", rules="rules.yaml")        # rules: a path, `Rules`, or the bundle's own
    part = inspector.inspect(frame, [DefectPrompt((40, 30, 200, 160), "crack")])
    part.verdict.verdict, part.verdict.rule                        # "NG", "defect 0 (crack): crack.max_length_mm: 3.1 > 2"
    for d in part.defects: d.measurement.length_mm, d.verdict.verdict, d.mask

A bundle may carry its product's `rules.yaml` and `recipe.yaml` beside `manifest.json` (docs/bundle.md):
`Inspector.open` reads them when no rules (or recipe) are given. Everything here is torch-free, and every
bad call raises a typed error of `edgesam_runtime.errors`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesam_runtime.defect_prompts import DefectPrompt, Recipe, load_recipe
from edgesam_runtime import inputs
from edgesam_runtime.bundle import bundle_path
from edgesam_runtime.errors import InvalidInputError
from edgesam_runtime.measure import Measurement, measure_mask, stability_scores
from edgesam_runtime.rules import FLOOR_FIGURES, REVIEW, Rules, Verdict, load_rules
from edgesam_runtime.segmenter import Segmenter
from edgesam_runtime.timing import ms_since

BUNDLE_RULES = "rules.yaml"  # optional files of a bundle (not hashed by the manifest: the line's own)
BUNDLE_RECIPE = "recipe.yaml"


@dataclass
class Defect:
    prompt: DefectPrompt
    measurement: Measurement
    verdict: Verdict
    mask: np.ndarray | None = field(default=None, repr=False)  # (H, W) bool in the frame

    def to_dict(self) -> dict:
        return {**self.prompt.to_dict(), "measurement": self.measurement.to_dict(), **self.verdict.to_dict()}


@dataclass
class PartInspection:
    defects: list[Defect]
    verdict: Verdict
    timings: dict = field(default_factory=dict)  # ms: encode, segment, measure, judge, total

    def counts(self) -> dict:
        """Defects per class and verdict: {class: {verdict: n}}."""
        out: dict = {}
        for d in self.defects:
            per_class = out.setdefault(d.prompt.class_name, {})
            per_class[d.verdict.verdict] = per_class.get(d.verdict.verdict, 0) + 1
        return out

    def to_dict(self) -> dict:
        return {**self.verdict.to_dict(), "defects": [d.to_dict() for d in self.defects],
                "timings": {k: round(v, 3) for k, v in self.timings.items()}}


class Inspector:
    """A segmenter and a product's rules; `inspect` answers one frame, thread-safe as the segmenter is."""

    def __init__(self, segmenter: Segmenter, rules: Rules, recipe: Recipe | None = None):
        if not isinstance(rules, Rules):
            raise InvalidInputError(f"rules: expected edgesam_runtime.rules.Rules, got {type(rules).__name__}")
        self.segmenter, self.rules, self.recipe = segmenter, rules, recipe

    @classmethod
    def open(cls, bundle_dir, rules=None, recipe=None, calibration=None, **segmenter_options) -> "Inspector":
        """`rules` / `recipe`: a path, a parsed object, or None for the bundle's own file (rules are required,
        a recipe is optional). `calibration` replaces the rules file's mm_per_px. Other options go to
        `Segmenter.open` (graph_set, backend, threads, warmup)."""
        bundle_dir = bundle_path(bundle_dir)
        rules = cls._rules(bundle_dir, rules, calibration)
        if recipe is None and (bundle_dir / BUNDLE_RECIPE).is_file():
            recipe = bundle_dir / BUNDLE_RECIPE
        if recipe is not None and not isinstance(recipe, Recipe):
            recipe = load_recipe(recipe)
        return cls(Segmenter.open(bundle_dir, **segmenter_options), rules, recipe)

    @staticmethod
    def _rules(bundle_dir: Path, rules, calibration) -> Rules:
        if isinstance(rules, Rules):
            return rules
        if rules is None:
            rules = bundle_dir / BUNDLE_RULES
            if not rules.is_file():
                raise InvalidInputError(f"rules: none given and {bundle_dir} holds no {BUNDLE_RULES}; pass a rules "
                                        "file (README: Inspection on the line)")
        return load_rules(rules, calibration)

    def prompts_for(self, image_hw: tuple[int, int]) -> list[DefectPrompt]:
        """The recipe's regions on a frame of `image_hw` (H, W)."""
        if self.recipe is None:
            raise InvalidInputError("prompts: no defect prompts given and no recipe (a boxes file per image, or "
                                    "a fixed-region recipe)")
        return self.recipe.prompts(image_hw)

    def inspect(self, image: np.ndarray, prompts: list[DefectPrompt] | None = None, keep_masks: bool = True
                ) -> PartInspection:
        """Segment each prompt's box, measure the masks and judge them; `prompts` None: the recipe's regions."""
        start = time.perf_counter()
        image = inputs.check_image(image)
        prompts = self.prompts_for(image.shape[:2]) if prompts is None else _checked_prompts(prompts)
        timings = {"encode_ms": 0.0, "segment_ms": 0.0}
        masks, scores, stability = np.zeros((0, *image.shape[:2]), bool), np.zeros(0), np.zeros(0)
        if prompts:
            step = time.perf_counter()
            embedding = self.segmenter.encode(image)
            timings["encode_ms"] = ms_since(step)
            step = time.perf_counter()
            masks, scores, stability = self._segment(embedding, prompts)
            timings["segment_ms"] = ms_since(step)
        part = self.judge(prompts, masks, scores, stability, keep_masks)
        part.timings = {**timings, **part.timings, "total_ms": ms_since(start)}
        return part

    def _segment(self, embedding, prompts: list[DefectPrompt]):
        """(K, H, W) masks, (K,) predicted IoU and stability, in chunks the bundle's prompt limit allows."""
        limit = max(1, int(self.segmenter.info.max_boxes or len(prompts)))
        masks, scores, stability = [], [], []
        for i in range(0, len(prompts), limit):
            boxes = np.array([p.box for p in prompts[i:i + limit]], np.float32)
            result = self.segmenter.segment(embedding, boxes=boxes)
            masks.append(result.masks[:, 0])
            scores.append(result.scores[:, 0])
            stability.append(stability_scores(result.low_res_logits))
        return np.concatenate(masks), np.concatenate(scores), np.concatenate(stability)

    def judge(self, prompts: list[DefectPrompt], masks: np.ndarray, predicted_iou=None, stability=None,
              keep_masks: bool = True) -> PartInspection:
        """Measure and judge given (K, H, W) masks (the model's, or ground truth with no quality figures).

        `predicted_iou` / `stability`: K figures each, or None; a NaN or infinite one is quality unknown,
        which a class with a floor on it sends to REVIEW."""
        prompts = _checked_prompts(prompts)
        masks = np.asarray(masks)
        if masks.ndim != 3 or len(masks) != len(prompts):
            raise InvalidInputError(f"masks: expected (K, H, W), one mask per prompt ({len(prompts)}), got shape "
                                    f"{masks.shape}")
        figures = {name: _quality_figures(name, values, len(prompts))
                   for name, values in (("predicted_iou", predicted_iou), ("stability", stability))}
        quality = [{name: None if f is None else float(f[k]) for name, f in figures.items()} for k in range(len(masks))]
        step = time.perf_counter()
        measurements = [measure_mask(m, self.rules.calibration, **q) for m, q in zip(masks, quality)]
        measure_ms = ms_since(step)
        step = time.perf_counter()
        verdicts = [self._judge_defect(p, m, q) for p, m, q in zip(prompts, measurements, quality)]
        part = self.rules.judge_part([(p.class_name, m, v) for p, m, v in zip(prompts, measurements, verdicts)])
        defects = [Defect(p, m, v, mask if keep_masks else None)
                   for p, m, v, mask in zip(prompts, measurements, verdicts, masks)]
        return PartInspection(defects, part, {"measure_ms": measure_ms, "judge_ms": ms_since(step)})

    def _judge_defect(self, prompt: DefectPrompt, measurement: Measurement, quality: dict) -> Verdict:
        """`Rules.judge_defect`, except that a floor over a non-finite figure sends the defect to REVIEW:
        `measure_mask` drops such figures as absent (ground truth), and an absent figure passes every floor."""
        verdict = self.rules.judge_defect(prompt.class_name, measurement, prompt.claimed)
        rules = self.rules.classes.get(prompt.class_name)
        if measurement.empty or rules is None:
            return verdict  # decided before any floor applies
        unknown = [f"{prompt.class_name}.{floor}: {FLOOR_FIGURES[floor]} is {value} (quality unknown)"
                   for floor in rules.floors
                   if (value := quality[FLOOR_FIGURES[floor]]) is not None and not math.isfinite(value)]
        if not unknown:
            return verdict
        if verdict.verdict == REVIEW:  # a floor already missed: keep its rule, list the unknown figures too
            return Verdict(REVIEW, verdict.rule, verdict.violations + tuple(unknown))
        return Verdict(REVIEW, unknown[0], tuple(unknown))


def _quality_figures(name: str, values, count: int) -> np.ndarray | None:
    """One quality figure per prompt as floats (NaN kept: it means unknown), or None when not given."""
    if values is None:
        return None
    figures = inputs.float_array(name, values, (1,), np.float64)
    if len(figures) != count:
        raise InvalidInputError(f"{name}: expected {count} values, one per prompt, got {len(figures)}")
    return figures


def _checked_prompts(prompts) -> list[DefectPrompt]:
    """`prompts` (any iterable of DefectPrompt) as a list, so it can be walked more than once."""
    try:
        prompts = list(prompts)
    except TypeError:
        raise InvalidInputError(f"prompts: expected a list of DefectPrompt(box, class_name), "
                                f"got {type(prompts).__name__}") from None
    for i, prompt in enumerate(prompts):
        if not isinstance(prompt, DefectPrompt):
            raise InvalidInputError(f"prompts[{i}]: expected a DefectPrompt(box, class_name), got {type(prompt).__name__}")
    return prompts
