"""Prompt-file parsing: every documented form gives the same (points, labels, boxes)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgesam_runtime import InvalidInputError
from edgesam_runtime.inputs import parse_prompts

ITEMS = [{"type": "point", "data": [3, 4], "label": 0}, {"type": "point", "data": [5.5, 6]},
         {"type": "box", "data": [1, 2, 30, 40]}]
EXPECTED = ([[3, 4], [5.5, 6]], [0, 1], [[1, 2, 30, 40]])


def same(got, want):
    for g, w in zip(got, want):
        if w is None:
            assert g is None
        else:
            np.testing.assert_array_equal(np.asarray(g, np.float32), np.asarray(w, np.float32))


def test_prompt_forms_agree(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(ITEMS))
    for form in (ITEMS, json.dumps(ITEMS), path, str(path)):
        same(parse_prompts(form), EXPECTED)
    same(parse_prompts({"points": EXPECTED[0], "labels": EXPECTED[1], "boxes": EXPECTED[2]}), EXPECTED)
    same(parse_prompts([{"type": "box", "data": [1, 2, 3, 4]}]), (None, None, [[1, 2, 3, 4]]))


@pytest.mark.parametrize("bad, message", [
    ([], "at least one point or box"), ([{"type": "point", "data": [1]}], r"prompts\[0\]"),
    ({"pts": []}, "unknown keys"), ("[1, 2", "not valid JSON"), ([{"type": "box", "data": [1, 2, "x", 4]}], r"prompts\[0\]"),
    ("/nonexistent/prompts.json", "not a readable JSON prompt file"), ([{"type": "point", "data": [1, 2], "label": 3}], "label"),
])
def test_bad_prompt_forms(bad, message):
    with pytest.raises(InvalidInputError, match=message):
        parse_prompts(bad)
