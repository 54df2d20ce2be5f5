"""The verdict API on the tiny bundle: prompts from boxes files and recipes, masks measured and judged."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgesam_runtime import InvalidInputError
from edgesam_runtime.defect_prompts import DefectPrompt, PromptFileError, load_recipe, parse_boxes, read_boxes_file
from edgesam_runtime.inspector import BUNDLE_RECIPE, BUNDLE_RULES, Inspector
from edgesam_runtime.measure import measure_mask
from edgesam_runtime.rules import NG, OK, REVIEW, parse_rules

RULES = {"mm_per_px": 0.5, "classes": {"crack": {"max_length_px": 10}, "blowhole": {"max_area_px": 100000}}}
RECIPE = "part_size: [100, 50]\nregions:\n  - {name: left, class: crack, box: [0, 0, 50, 50]}\n" \
         "  - {name: right, class: blowhole, box: [60, 10, 90, 40]}\n"


@pytest.fixture(scope="module")
def inspector(segmenter):
    return Inspector(segmenter, parse_rules(RULES))


def test_each_prompt_is_measured_and_judged(inspector, make_image):
    image = make_image(90, 140)
    prompts = [DefectPrompt((10, 10, 80, 60), "crack"), DefectPrompt((60, 20, 130, 85), "blowhole"),
               DefectPrompt((5, 5, 40, 40), "stain")]
    part = inspector.inspect(image, prompts)
    assert [d.prompt for d in part.defects] == prompts
    for defect in part.defects:
        assert defect.mask.shape == (90, 140)
        again = measure_mask(defect.mask, inspector.rules.calibration)
        assert again.area_px == defect.measurement.area_px and again.length_px == defect.measurement.length_px
        assert np.isfinite(defect.measurement.predicted_iou)  # the decoder's own estimate, carried
        expected = inspector.rules.judge_defect(defect.prompt.class_name, defect.measurement)
        assert defect.verdict == expected
    assert part.defects[2].verdict.verdict == REVIEW  # unlisted class, or an empty mask: REVIEW either way
    assert part.verdict.verdict in (NG, REVIEW) and part.verdict.rule.startswith("defect ")
    assert {"encode_ms", "segment_ms", "measure_ms", "judge_ms", "total_ms"} <= set(part.timings)
    record = json.loads(json.dumps(part.to_dict()))  # JSON-ready for the line's log
    assert record["verdict"] == part.verdict.verdict and len(record["defects"]) == 3


def test_no_prompts_means_no_defect_and_no_model_call(inspector, make_image):
    part = inspector.inspect(make_image(), [])
    assert part.verdict.verdict == OK and part.defects == [] and part.timings["encode_ms"] == 0.0


def test_more_prompts_than_the_bundle_takes_go_in_chunks(inspector, make_image):
    limit = inspector.segmenter.info.max_boxes
    prompts = [DefectPrompt((i % 50, 5, i % 50 + 30, 40), "blowhole") for i in range(limit + 3)]
    part = inspector.inspect(make_image(), prompts)
    assert len(part.defects) == limit + 3


def test_judging_ground_truth_masks_skips_the_quality_floors(inspector):
    mask = np.zeros((1, 40, 60), bool)
    mask[0, 20, 5:45] = True  # 40 px long: beyond the crack's 10 px
    part = inspector.judge([DefectPrompt((5, 20, 44, 20), "crack")], mask)
    assert part.verdict.verdict == NG and part.defects[0].measurement.predicted_iou is None


def test_recipe_regions_scale_onto_the_frame(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE)
    recipe = load_recipe(path)
    prompts = recipe.prompts((100, 200))  # the frame is twice the part's size
    assert [p.box for p in prompts] == [(0, 0, 100, 100), (120, 20, 180, 80)]
    assert [p.name for p in prompts] == ["left", "right"] and not any(p.claimed for p in prompts)


def test_recipe_and_boxes_errors_name_every_bad_field(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("part_size: [0, 50]\nregions:\n  - {class: crack, box: [5, 5, 1, 1]}\n  - {box: [1, 2, 3]}\n"
                    "extra: 1\n")
    with pytest.raises(PromptFileError) as info:
        load_recipe(path)
    for expected in ("part_size: expected [width, height]", "regions[0].box: expected x0 <= x1",
                     "regions[1].box: expected [x0, y0, x1, y1]", "extra: unknown field"):
        assert expected in str(info.value)
    with pytest.raises(PromptFileError, match=r"\[1\].class: expected a class name"):
        parse_boxes([{"box": [1, 2, 3, 4]}, {"box": [1, 2, 3, 4], "class": 7}])
    with pytest.raises(PromptFileError, match=r"\[0\].box: expected \[x0, y0, x1, y1\], four numbers >= 0"):
        parse_boxes([{"box": [1, 2, 1e300, 4]}])  # finite, but infinite once the segmenter takes it as float32
    boxes = tmp_path / "a.json"
    boxes.write_text('[{"box": [1, 2, 30, 40], "class": "crack"}, {"box": [0, 0, 5, 5]}]')
    assert [p.class_name for p in read_boxes_file(boxes)] == ["crack", "defect"]
    boxes.write_text("{not json")
    with pytest.raises(PromptFileError, match="a.json: not valid JSON"):
        read_boxes_file(boxes)


def test_bad_calls_raise_typed_errors(inspector, make_image):
    with pytest.raises(InvalidInputError, match=r"prompts\[0\]"):
        inspector.inspect(make_image(), [(1, 2, 3, 4)])
    with pytest.raises(InvalidInputError, match="outside"):
        inspector.inspect(make_image(50, 70), [DefectPrompt((10, 10, 300, 40), "crack")])
    with pytest.raises(InvalidInputError, match="no recipe"):
        inspector.inspect(make_image())
    with pytest.raises(InvalidInputError, match="image: expected a numpy array"):
        inspector.inspect("frame.png", [])
    with pytest.raises(InvalidInputError, match="one mask per prompt"):
        inspector.judge([DefectPrompt((1, 1, 5, 5), "crack")], np.zeros((2, 8, 8), bool))
    assert inspector.inspect(make_image(), [DefectPrompt((10, 10, 30, 40), "crack")]).defects  # still usable


def test_open_reads_the_bundle_rules_and_recipe(bundle_dir, tmp_path, make_image):
    import yaml

    with pytest.raises(InvalidInputError, match=f"holds no {BUNDLE_RULES}"):
        Inspector.open(bundle_dir, warmup=False)
    line_bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, line_bundle)
    (line_bundle / BUNDLE_RULES).write_text(yaml.safe_dump(RULES))
    (line_bundle / BUNDLE_RECIPE).write_text(RECIPE)
    inspector = Inspector.open(line_bundle, warmup=False, backend="onnxruntime")
    part = inspector.inspect(make_image(90, 140))  # the recipe's regions
    assert [d.prompt.name for d in part.defects] == ["left", "right"]
