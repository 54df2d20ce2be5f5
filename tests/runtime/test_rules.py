"""Rules files: validation names every bad field; verdicts per defect and per part name the deciding rule."""
from __future__ import annotations

import numpy as np
import pytest

from edgesam_runtime import InvalidInputError
from edgesam_runtime.measure import Calibration, measure_mask
from edgesam_runtime.rules import NG, OK, REVIEW, RulesError, load_rules, parse_rules

RULES = {
    "product": "tile-a",
    "mm_per_px": 0.1,
    "quality": {"min_predicted_iou": 0.5, "min_stability": 0.6},
    "classes": {"crack": {"max_length_mm": 2.0, "max_width_mm": 0.5},
                "blowhole": {"max_area_mm2": 1.0, "max_count": 2, "min_predicted_iou": 0.8}},
}


def _bar(length: int, width: int = 1, iou: float | None = 0.9, stability: float | None = 0.9, cal=Calibration(0.1)):
    mask = np.zeros((60, 80), bool)
    mask[10:10 + width, 5:5 + length] = True
    return measure_mask(mask, cal, iou, stability)


def test_defect_verdicts_name_the_deciding_rule():
    rules = parse_rules(RULES)
    ok = rules.judge_defect("crack", _bar(15))  # 1.5 mm long, 0.1 mm wide
    assert (ok.verdict, ok.rule) == (OK, "within the crack limits")
    long = rules.judge_defect("crack", _bar(30, width=7))  # 3.0 mm long, 0.7 mm wide: both limits exceeded
    assert long.verdict == NG and long.rule.startswith("crack.max_length_mm: 3 > 2")
    assert len(long.violations) == 2 and long.violations[1].startswith("crack.max_width_mm")
    unsure = rules.judge_defect("crack", _bar(30, iou=0.3))  # beyond limits, but the mask is not trusted
    assert unsure.verdict == REVIEW and unsure.rule == "crack.min_predicted_iou: 0.3 < 0.5"
    assert rules.judge_defect("blowhole", _bar(5, iou=0.7)).rule == "blowhole.min_predicted_iou: 0.7 < 0.8"
    assert rules.judge_defect("crack", _bar(15, stability=0.2)).rule == "crack.min_stability: 0.2 < 0.6"
    # ground-truth masks carry no quality figures: the floors do not apply
    assert rules.judge_defect("crack", _bar(15, iou=None, stability=None)).verdict == OK


def test_empty_masks_and_unlisted_classes():
    rules = parse_rules({**RULES, "unlisted_class": "ng"})
    empty = measure_mask(np.zeros((10, 10), bool), Calibration(0.1))
    assert rules.judge_defect("crack", empty, claimed=True).verdict == REVIEW
    assert rules.judge_defect("crack", empty, claimed=False).verdict == OK  # a recipe region with nothing in it
    unlisted = rules.judge_defect("stain", _bar(3))
    assert unlisted.verdict == NG and "stain" in unlisted.rule
    assert parse_rules(RULES).judge_defect("stain", _bar(3)).verdict == REVIEW  # the default


def test_part_verdict_counts_and_severity():
    rules = parse_rules(RULES)
    small = ("blowhole", _bar(3, width=3), None)
    small = (*small[:2], rules.judge_defect(*small[:2]))
    assert rules.judge_part([small, small]).verdict == OK
    three = rules.judge_part([small, small, small])
    assert three.verdict == NG and three.rule == "blowhole.max_count: 3 > 2"
    review = ("crack", _bar(5, iou=0.1), None)
    review = (*review[:2], rules.judge_defect(*review[:2]))
    part = rules.judge_part([small, review])
    assert part.verdict == REVIEW and part.rule.startswith("defect 1 (crack): crack.min_predicted_iou")
    bad = ("crack", _bar(40), None)
    bad = (*bad[:2], rules.judge_defect(*bad[:2]))
    part = rules.judge_part([review, bad])
    assert part.verdict == NG and part.rule.startswith("defect 1 (crack): crack.max_length_mm")
    assert rules.judge_part([]).verdict == OK


def test_every_bad_field_is_named_in_one_error(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("mm_per_px: -1\nquality: {min_predicted_iou: 2}\nunlisted_class: maybe\ncolour: red\n"
                    "classes:\n  crack: {max_length_mm: two, max_lenght_mm: 1}\n  pit: {max_count: 1.5}\n")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for expected in ("colour: unknown field", "mm_per_px: expected a positive number",
                     "quality.min_predicted_iou: expected a number in [0, 1], got 2",
                     "unlisted_class: expected one of ok, ng, review, got 'maybe'",
                     "classes.crack.max_length_mm: expected a number >= 0, got 'two'",
                     "classes.crack.max_lenght_mm: unknown limit", "classes.pit.max_count: expected a whole number"):
        assert expected in message, (expected, message)
    assert isinstance(info.value, InvalidInputError)  # line software catches the runtime's errors


def test_mm_limits_need_a_calibration(tmp_path):
    rules = {k: v for k, v in RULES.items() if k != "mm_per_px"}
    with pytest.raises(RulesError, match="classes.crack.max_length_mm: a limit in mm needs a calibration"):
        parse_rules(rules)
    assert parse_rules(rules, calibration=Calibration(0.2)).calibration == Calibration(0.2)  # the station's own
    assert parse_rules({"classes": {"crack": {"max_length_px": 30}}}).calibration is None


@pytest.mark.parametrize("text, match", [("[1, 2]", "mapping"), ("classes: {}", "classes: expected a mapping"),
                                         ("classes: {crack: 3}", "classes.crack: expected a mapping"),
                                         ("classes: [", "not a readable YAML")])
def test_malformed_files(tmp_path, text, match):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesError, match=match):
        load_rules(path)


def test_round_trip_to_dict():
    rules = parse_rules(RULES, source="r.yaml")
    again = parse_rules({k: v for k, v in rules.to_dict().items() if k != "source"})
    assert again.classes == rules.classes and again.calibration == rules.calibration
