"""Where to look on a part: defect prompts from a boxes file (a box per claimed defect) or a fixed-ROI recipe.

A boxes file (JSON, one per image) lists the defects a detector, a fixture or a person marked:

    [{"box": [x0, y0, x1, y1], "class": "crack"}, {"box": [120, 40, 150, 66], "class": "blowhole"}]

in image pixels (inclusive corners; "class" defaults to "defect"). A recipe (YAML) is for parts that arrive in
the same pose: regions in the part's own coordinates, inspected on every part, scaled onto each frame:

    part_size: [120, 80]            # the part's frame: width, height in its units (mm of a drawing, px of a
    regions:                        #   reference image); the camera's frame shows exactly this
      - {name: left_edge, class: crack, box: [0, 0, 15, 80]}
      - {name: bore, class: blowhole, box: [50, 30, 70, 50]}

A boxes file claims its defects (an empty mask there goes to REVIEW); a recipe's regions do not (an empty
mask there is a part without a defect in that region).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

from edgesam_runtime import schema
from edgesam_runtime.errors import InvalidInputError
from edgesam_runtime.measure import is_finite_number
from edgesam_runtime.yamlio import read_yaml_mapping

FLOAT32_MAX = 3.4028234663852886e38  # numpy.finfo(numpy.float32).max: boxes reach the graphs as float32

DEFAULT_CLASS = "defect"


class PromptFileError(InvalidInputError):
    """A boxes file or recipe that cannot be used; the message names the file and every bad field."""


@dataclass(frozen=True)
class DefectPrompt:
    box: tuple  # x0, y0, x1, y1 in image pixels
    class_name: str = DEFAULT_CLASS
    claimed: bool = True  # a defect is claimed there (boxes file) vs a region inspected on every part (recipe)
    name: str | None = None  # the recipe region's name

    def __post_init__(self):
        """Refuse a malformed prompt where it is made (in the words a boxes file's errors use), not deep in
        `Inspector.inspect` as an untyped numpy error."""
        problems: list[str] = []
        box = _box(_box_numbers(self.box), "DefectPrompt.box", problems)
        name = _class_name(self.class_name, "DefectPrompt.class_name", problems)
        if problems:
            raise InvalidInputError("; ".join(problems))
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "class_name", name)

    def to_dict(self) -> dict:
        out = {"box": [round(float(v), 2) for v in self.box], "class": self.class_name, "claimed": self.claimed}
        return {**out, "name": self.name} if self.name else out


def parse_boxes(items, source: str = "boxes") -> list[DefectPrompt]:
    """The boxes-file form (a JSON list) -> claimed defect prompts; one error names every bad entry."""
    if not isinstance(items, list):
        raise PromptFileError(f"{source}: expected a JSON list of {{\"box\": [x0, y0, x1, y1], \"class\": name}}, "
                              f"got {type(items).__name__}")
    problems, prompts = [], []
    for i, item in enumerate(items):
        where = f"[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected {{\"box\": [x0, y0, x1, y1], \"class\": name}}, got {item!r}")
            continue
        problems += [f"{where}.{key}: unknown field; expected box, class" for key in item if key not in ("box", "class")]
        box = _box(item.get("box"), f"{where}.box", problems)
        name = _class_name(item.get("class", DEFAULT_CLASS), f"{where}.class", problems)
        if box is not None and name is not None:
            prompts.append(DefectPrompt(box, name, claimed=True))
    if problems:
        raise PromptFileError(f"{source}: " + "; ".join(problems))
    return prompts


def read_boxes_file(path) -> list[DefectPrompt]:
    """A boxes file; size, encoding, depth and finite numbers are checked as for every file read (edgesam_runtime.schema)."""
    path = Path(path)
    return parse_boxes(schema.load_json(path, error=PromptFileError), str(path))


@dataclass(frozen=True)
class Recipe:
    part_size: tuple  # width, height of the part's frame
    regions: tuple  # DefectPrompt in part coordinates (claimed=False)
    source: str = "recipe"

    def prompts(self, image_hw: tuple[int, int]) -> list[DefectPrompt]:
        """The regions scaled onto an (H, W) frame, clipped to it."""
        h, w = image_hw
        sx, sy = w / self.part_size[0], h / self.part_size[1]
        out = []
        for region in self.regions:
            x0, y0, x1, y1 = region.box
            box = (min(max(x0 * sx, 0.0), w), min(max(y0 * sy, 0.0), h), min(max(x1 * sx, 0.0), w),
                   min(max(y1 * sy, 0.0), h))
            out.append(DefectPrompt(box, region.class_name, claimed=False, name=region.name))
        return out

    def to_dict(self) -> dict:
        return {"source": self.source, "part_size": list(self.part_size),
                "regions": [{"name": r.name, "class": r.class_name, "box": list(r.box)} for r in self.regions]}


def load_recipe(path) -> Recipe:
    path = Path(path)
    return parse_recipe(read_yaml_mapping(path, PromptFileError), str(path))


def parse_recipe(data: dict, source: str = "recipe") -> Recipe:
    """Validate a recipe mapping; one `PromptFileError` names every bad field."""
    if not isinstance(data, dict):
        raise PromptFileError(f"{source}: expected a mapping with part_size and regions, got {type(data).__name__}")
    problems = [f"{key}: unknown field; expected part_size, regions" for key in data
                if key not in ("part_size", "regions")]
    size = data.get("part_size")
    if not (isinstance(size, list) and len(size) == 2 and all(is_finite_number(v) and v > 0 for v in size)):
        problems.append(f"part_size: expected [width, height] of the part's frame, both > 0, got {size!r}")
        size = None
    raw = data.get("regions")
    if not isinstance(raw, list) or not raw:
        problems.append(f"regions: expected a list of {{name, class, box: [x0, y0, x1, y1]}} (at least one), got {raw!r}")
        raw = []
    regions = []
    for i, item in enumerate(raw):
        where = f"regions[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected {{name, class, box}}, got {item!r}")
            continue
        problems += [f"{where}.{key}: unknown field; expected name, class, box" for key in item
                     if key not in ("name", "class", "box")]
        box = _box(item.get("box"), f"{where}.box", problems)
        if box is not None and size is not None and (box[2] > size[0] or box[3] > size[1]):
            problems.append(f"{where}.box: {list(box)} reaches beyond part_size {size}")
        name = _class_name(item.get("class", DEFAULT_CLASS), f"{where}.class", problems)
        label = item.get("name", f"region{i}")
        if box is not None and name is not None:
            regions.append(DefectPrompt(box, name, claimed=False, name=str(label)))
    if problems:
        raise PromptFileError(f"{source}: " + "; ".join(problems))
    return Recipe((float(size[0]), float(size[1])), tuple(regions), source)


def _box_numbers(value):
    """A box given in code (tuple, list or 1-D array; numpy scalars too) as the list of floats `_box` takes
    from a file; anything else unchanged, for `_box` to refuse by name."""
    try:
        items = None if isinstance(value, (str, bytes)) else list(value)
    except TypeError:
        return value
    if items is None or not all(isinstance(v, numbers.Real) for v in items):
        return value
    return [float(v) for v in items]


def _box(value, where: str, problems: list) -> tuple | None:
    # a number above FLOAT32_MAX (1e300) would turn into infinity in the segmenter's float32 boxes
    if not (isinstance(value, list) and len(value) == 4
            and all(is_finite_number(v) and 0 <= v <= FLOAT32_MAX for v in value)):
        problems.append(f"{where}: expected [x0, y0, x1, y1], four numbers >= 0 (pixels), got {value!r}")
        return None
    if value[2] < value[0] or value[3] < value[1]:
        problems.append(f"{where}: expected x0 <= x1 and y0 <= y1, got {value}")
        return None
    return tuple(float(v) for v in value)


def _class_name(value, where: str, problems: list) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: expected a class name (text), got {value!r}")
        return None
    return value.strip()

