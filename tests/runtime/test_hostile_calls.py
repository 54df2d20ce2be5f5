"""Hostile calls into the public API: each is refused with a typed error naming the argument (or, for a
quality figure that is not a number, judged REVIEW), and the segmenter keeps working afterwards."""
from __future__ import annotations

import math

import numpy as np
import pytest

from edgesam_runtime import InvalidInputError, Segmenter
from edgesam_runtime.defect_prompts import DefectPrompt
from edgesam_runtime.inspector import Inspector
from edgesam_runtime.rules import OK, REVIEW, parse_rules
from edgesam_runtime.threads import ENV_THREADS, MAX_THREADS

FLOORS = {"quality": {"min_predicted_iou": 0.9, "min_stability": 0.9}, "classes": {"crack": {"max_length_px": 1000}}}


@pytest.fixture(scope="module")
def inspector(segmenter):
    return Inspector(segmenter, parse_rules(FLOORS))


def _one_mask(count: int = 1) -> np.ndarray:
    masks = np.zeros((count, 40, 60), bool)
    masks[:, 10:30, 10:50] = True
    return masks


PROMPT = DefectPrompt((10, 10, 50, 30), "crack")


# -- quality figures that are not numbers ---------------------------------------------------------------
@pytest.mark.parametrize("iou, stability, unknown", [
    ([math.nan], [math.nan], "predicted_iou"),
    ([math.nan], [0.95], "predicted_iou"),
    ([0.95], [math.nan], "stability"),
    ([math.inf], None, "predicted_iou"),
])
def test_unknown_quality_goes_to_review_under_a_floor(inspector, iou, stability, unknown):
    part = inspector.judge([PROMPT], _one_mask(), predicted_iou=iou, stability=stability)
    verdict = part.defects[0].verdict
    assert verdict.verdict == REVIEW and part.verdict.verdict == REVIEW
    assert "quality unknown" in verdict.rule and unknown in verdict.rule


def test_a_missed_floor_keeps_its_rule_beside_an_unknown_figure(inspector):
    verdict = inspector.judge([PROMPT], _one_mask(), predicted_iou=[0.1], stability=[math.nan]).defects[0].verdict
    assert verdict.verdict == REVIEW and "0.1 < 0.9" in verdict.rule
    assert any("stability" in v and "quality unknown" in v for v in verdict.violations)


def test_known_quality_above_the_floors_stays_ok(inspector):
    assert inspector.judge([PROMPT], _one_mask(), [0.95], [0.95]).verdict.verdict == OK


def test_unknown_quality_without_a_floor_is_not_a_review(segmenter):
    no_floors = Inspector(segmenter, parse_rules({"classes": {"crack": {"max_length_px": 1000}}}))
    assert no_floors.judge([PROMPT], _one_mask(), [math.nan], [math.nan]).verdict.verdict == OK


@pytest.mark.parametrize("name", ["predicted_iou", "stability"])
def test_quality_figures_must_match_the_prompts(inspector, name):
    with pytest.raises(InvalidInputError, match=f"{name}: expected 2 values"):
        inspector.judge([PROMPT] * 2, _one_mask(2), **{name: [0.5]})
    with pytest.raises(InvalidInputError, match=name):
        inspector.judge([PROMPT], _one_mask(), **{name: [["a"]]})


# -- untyped errors from the public API ------------------------------------------------------------------
@pytest.mark.parametrize("bundle", [None, 123, b"bundle"])
def test_a_bundle_dir_that_is_not_a_path_is_refused(bundle):
    with pytest.raises(InvalidInputError, match="bundle_dir"):
        Segmenter.open(bundle)
    with pytest.raises(InvalidInputError, match="bundle_dir"):
        Inspector.open(bundle, rules=parse_rules(FLOORS))


def test_a_graph_set_that_is_not_a_name_is_refused(bundle_dir):
    with pytest.raises(InvalidInputError, match="graph_set"):
        Segmenter.open(bundle_dir, graph_set=["fp32"])


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix itself warns
def test_an_ndarray_subclass_is_read_as_its_data(segmenter, make_image):
    image = make_image()
    plain = segmenter.encode(image)
    emb = segmenter.encode(np.matrix(image))
    np.testing.assert_array_equal(emb.features, plain.features)


def test_an_empty_batch_of_point_sets_is_refused_before_the_graph(segmenter, make_image, capfd):
    emb = segmenter.encode(make_image())
    with pytest.raises(InvalidInputError, match="points"):
        segmenter.segment(emb, points=np.zeros((0, 1, 2)), labels=np.zeros((0, 1)))
    assert "Reshape" not in capfd.readouterr().err  # ONNX Runtime never saw it
    assert segmenter.segment(emb, boxes=[[5, 5, 40, 40]]).masks.shape[0] == 1


def test_boxes_of_unequal_length_are_refused(segmenter, make_image):
    emb = segmenter.encode(make_image())
    with pytest.raises(InvalidInputError, match="boxes: expected entries of equal length"):
        segmenter.segment(emb, boxes=[[5, 5, 40, 40], [5, 5, 40]])


@pytest.mark.parametrize("box", ["abcd", (1, 2, 3), (1, 2, 3, math.nan), (30, 5, 10, 40), None])
def test_a_malformed_defect_box_is_refused_where_it_is_made(box):
    with pytest.raises(InvalidInputError, match="DefectPrompt.box"):
        DefectPrompt(box, "crack")


@pytest.mark.parametrize("class_name", [None, "", "  ", 3])
def test_a_defect_class_must_be_a_name(class_name):
    with pytest.raises(InvalidInputError, match="DefectPrompt.class_name"):
        DefectPrompt((1, 2, 3, 4), class_name)


def test_defect_boxes_from_numpy_are_accepted_as_floats():
    prompt = DefectPrompt(np.array([1, 2, 30, 40], np.int64), "crack")
    assert prompt.box == (1.0, 2.0, 30.0, 40.0) and all(type(v) is float for v in prompt.box)


@pytest.mark.parametrize("prompts", [None, 5])
def test_judge_refuses_prompts_that_are_not_a_list(inspector, prompts):
    with pytest.raises(InvalidInputError, match="prompts"):
        inspector.judge(prompts, _one_mask())


# -- thread counts -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("threads", [2 ** 40, MAX_THREADS + 1])
def test_a_huge_thread_count_is_refused(bundle_dir, threads):
    with pytest.raises(InvalidInputError, match="threads"):
        Segmenter.open(bundle_dir, threads=threads, warmup=False)


@pytest.mark.parametrize("value", ["99999999999999999999", str(MAX_THREADS + 1)])
def test_a_huge_thread_count_from_the_environment_is_refused(bundle_dir, monkeypatch, value):
    monkeypatch.setenv(ENV_THREADS, value)
    with pytest.raises(InvalidInputError, match=ENV_THREADS):
        Segmenter.open(bundle_dir, warmup=False)
