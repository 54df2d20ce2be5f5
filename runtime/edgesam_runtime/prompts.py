"""Prompt files and flags -> arrays (torch-free; used by the CLI, the runtime and bench).

A prompt file is a JSON list: `[{"type": "point", "data": [x, y], "label": 1},
{"type": "box", "data": [x0, y0, x1, y1]}]` (labels: 1 positive, 0 negative).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesam_runtime import schema


class PromptError(ValueError):
    """A prompt that is malformed: names the entry and what was expected."""


# The one rule for box corners, worded once for the CLI and the runtime. Corners are inclusive (the
# tight box of a one-pixel object has x0 == x1), so only an inverted box is wrong.
BOX_CORNERS_EXPECTED = "expected x0 <= x1 and y0 <= y1 (corners as x0, y0, x1, y1)"


def box_is_inverted(box) -> bool:
    return box[2] < box[0] or box[3] < box[1]


def outside_image(name: str, xy: np.ndarray, original_hw: tuple[int, int]) -> str | None:
    """The error for the first (x, y) of `xy` (..., 2) outside the image, or None when all are inside."""
    h, w = original_hw
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    bad = (xy[:, 0] < 0) | (xy[:, 0] > w) | (xy[:, 1] < 0) | (xy[:, 1] > h)
    if not bad.any():
        return None
    first = [float(v) for v in xy[bad][0]]
    return (f"{name}: coordinate {first} lies outside the {w}x{h} (width x height) image; "
            f"expected 0 <= x <= {w} and 0 <= y <= {h} in original-image pixels")


@dataclass
class Prompts:
    """Points (N, 2) with labels (N,), and boxes (B, 4); either part may be None."""

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    boxes: np.ndarray | None = None

    def __post_init__(self):
        if self.points is None and self.boxes is None:
            raise PromptError("prompts: give at least one point or box")

    def check_inside(self, original_hw: tuple[int, int]) -> "Prompts":
        """Refuse coordinates outside an image of `original_hw` (H, W), as the runtime does."""
        for name, xy in (("points", self.points), ("boxes", self.boxes)):
            problem = None if xy is None else outside_image(name, xy, original_hw)
            if problem:
                raise PromptError(problem)
        return self


def parse_prompt_list(items: list, source: str = "prompts", names: list[str] | None = None) -> Prompts:
    """The JSON prompt-file form -> Prompts (validated entry by entry; errors name `source[i]`, or
    `names[i]` when given, e.g. the flag an entry came from)."""
    if not isinstance(items, list):
        raise PromptError(f"{source}: expected a JSON list of prompt objects, got {type(items).__name__}")
    points, labels, boxes = [], [], []
    for i, item in enumerate(items):
        where = f"{source}[{i}]"
        field = (lambda name, flag=names[i]: flag) if names else (lambda name, w=where: f"{w}.{name}")
        kind = item.get("type") if isinstance(item, dict) else None
        data = item.get("data") if isinstance(item, dict) else None
        if kind == "point":
            points.append(_numbers(data, 2, field("data")))
            label = item.get("label", 1)
            if label not in (0, 1):
                raise PromptError(f"{field('label')}: expected label 1 (positive) or 0 (negative), got {label!r}")
            labels.append(label)
        elif kind == "box":
            box = _numbers(data, 4, field("data"))
            if box_is_inverted(box):
                raise PromptError(f"{field('data')}: {BOX_CORNERS_EXPECTED}, got {box}")
            boxes.append(box)
        else:
            raise PromptError(f"{field('type')}: expected 'point' or 'box', got {kind!r}")
    return Prompts(
        np.array(points, np.float32) if points else None,
        np.array(labels, np.float32) if points else None,
        np.array(boxes, np.float32) if boxes else None,
    )


def read_prompt_file(path: str | Path) -> Prompts:
    """A JSON prompt file, read and checked by `edgesam_runtime.schema` (size, depth, finite numbers), then entry by entry."""
    if not Path(path).is_file():
        raise PromptError(f"{path}: not a readable JSON prompt file (no such file)")
    items = schema.load_json(path, "prompts", PromptError)
    return parse_prompt_list(items, str(path))


def parse_flag(text: str, size: int, name: str) -> list[float]:
    """'x0,y0,x1,y1' -> numbers, with an error naming the flag."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise PromptError(f"--{name} {text!r}: expected {size} comma-separated numbers") from None
    return values


def from_flags(points: tuple[str, ...], boxes: tuple[str, ...]) -> Prompts:
    """`--point x,y[,label]` and `--box x0,y0,x1,y1` flags -> Prompts; errors quote the flag."""
    items, names = [], []
    for text in points:
        values = text.split(",")
        if len(values) not in (2, 3):
            raise PromptError(f"--point {text!r}: expected x,y or x,y,label (label 1 positive, 0 negative)")
        label = parse_flag(values[2], 1, "point")[0] if len(values) == 3 else 1
        items.append({"type": "point", "data": parse_flag(",".join(values[:2]), 2, "point"), "label": label})
        names.append(f"--point {text!r}")
    for text in boxes:
        items.append({"type": "box", "data": parse_flag(text, 4, "box")})
        names.append(f"--box {text!r}")
    return parse_prompt_list(items, "flags", names)


def _numbers(data, size: int, where: str) -> list[float]:
    if not isinstance(data, (list, tuple)) or len(data) != size:
        raise PromptError(f"{where}: expected {size} numbers, got {data!r}")
    try:
        values = [float(v) for v in data]
    except (TypeError, ValueError):
        raise PromptError(f"{where}: expected {size} numbers, got {data!r}") from None
    if not np.all(np.isfinite(values)):
        raise PromptError(f"{where}: expected finite numbers, got {data!r}")
    return values
