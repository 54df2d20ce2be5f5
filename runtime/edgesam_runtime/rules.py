"""A product's inspection rules (YAML) and the verdicts they give: OK, NG or REVIEW, with the rule that decided.

    product: tile-a                     # optional, shown in reports
    mm_per_px: 0.05                     # or [x, y]; needed by every *_mm limit (a caller may pass one instead)
    quality: {min_predicted_iou: 0.5, min_stability: 0.6}   # below a floor a defect goes to REVIEW
    unlisted_class: review              # verdict of a defect whose class has no entry: ok | ng | review
    classes:
      crack: {max_length_mm: 2.0, max_width_mm: 0.1}
      blowhole: {max_area_mm2: 0.5, max_count: 3, min_predicted_iou: 0.7}   # a class may set its own floors

A defect is judged in this order: an empty mask (REVIEW when its prompt claims a defect, OK for a fixed
region where nothing was found); its class unlisted (`unlisted_class`); a quality floor missed (REVIEW: the
measurements cannot be trusted); the first limit exceeded, in the file's order (NG); else OK. A part is NG
when a defect is NG or a class has more defects than its `max_count`, else REVIEW when a defect is, else OK.

The file is validated on load: every bad field is named in one `RulesError` (the file, the field's path,
what was expected, what came). Validation lives here, self-contained, so that it can move onto a shared
schema layer without changing what it accepts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgesam_runtime.errors import InvalidInputError
from edgesam_runtime.measure import Calibration, Measurement, is_finite_number
from edgesam_runtime.yamlio import read_yaml_mapping

OK, NG, REVIEW = "OK", "NG", "REVIEW"
VERDICTS = (OK, REVIEW, NG)  # in rising severity
# limit in a rules file -> the measurement it bounds (`Measurement` field)
LIMITS = {
    "max_area_px": "area_px", "max_area_mm2": "area_mm2",
    "max_length_px": "length_px", "max_length_mm": "length_mm",
    "max_width_px": "max_width_px", "max_width_mm": "max_width_mm",
    "max_mean_width_px": "mean_width_px", "max_mean_width_mm": "mean_width_mm",
}
FLOORS = ("min_predicted_iou", "min_stability")  # quality floors in [0, 1]; the measurement they bound:
FLOOR_FIGURES = {"min_predicted_iou": "predicted_iou", "min_stability": "stability"}
TOP_FIELDS = ("product", "mm_per_px", "quality", "unlisted_class", "classes")


class RulesError(InvalidInputError):
    """A rules file (or mapping) that cannot be used; the message names every bad field."""


@dataclass(frozen=True)
class ClassRules:
    limits: dict  # rule name (LIMITS) -> limit, in the file's order
    max_count: int | None = None
    floors: dict = field(default_factory=dict)  # FLOORS name -> floor (the class's own, else the file's)


@dataclass(frozen=True)
class Verdict:
    verdict: str  # OK | NG | REVIEW
    rule: str  # the rule that decided, as a reader sees it
    violations: tuple = ()  # every limit exceeded (NG) or floor missed (REVIEW)

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "rule": self.rule, "violations": list(self.violations)}


@dataclass(frozen=True)
class Rules:
    classes: dict  # class name -> ClassRules
    calibration: Calibration | None = None
    floors: dict = field(default_factory=dict)  # the file's quality floors
    unlisted_class: str = REVIEW
    product: str | None = None
    source: str = "rules"

    # -- verdicts -----------------------------------------------------------------------------------
    def judge_defect(self, class_name: str, measurement: Measurement, claimed: bool = True) -> Verdict:
        """The verdict of one defect. `claimed`: its prompt says a defect is there (a box from a detector or
        a person); False for a fixed region inspected on every part, where an empty mask means no defect."""
        if measurement.empty:
            if claimed:
                return Verdict(REVIEW, "empty mask: the prompt claims a defect the model does not mark")
            return Verdict(OK, "no defect marked in the region")
        rules = self.classes.get(class_name)
        if rules is None:
            return Verdict(self.unlisted_class, f"unlisted_class: no rules for class {class_name!r}")
        missed = [f"{class_name}.{name}: {_fmt(value)} < {_fmt(floor)}" for name, floor in rules.floors.items()
                  if (value := measurement.value(FLOOR_FIGURES[name])) is not None and value < floor]
        if missed:
            return Verdict(REVIEW, missed[0], tuple(missed))
        exceeded = [f"{class_name}.{name}: {_fmt(value)} > {_fmt(limit)}" for name, limit in rules.limits.items()
                    if (value := measurement.value(LIMITS[name])) is not None and value > limit]
        if exceeded:
            return Verdict(NG, exceeded[0], tuple(exceeded))
        return Verdict(OK, f"within the {class_name} limits")

    def judge_part(self, defects: list[tuple[str, Measurement, Verdict]]) -> Verdict:
        """The part's verdict from its defects' (class, measurement, verdict), with the counts per class."""
        counts: dict[str, int] = {}
        for class_name, measurement, _ in defects:
            if not measurement.empty:
                counts[class_name] = counts.get(class_name, 0) + 1
        too_many = [f"{name}.max_count: {counts[name]} > {rules.max_count}" for name, rules in self.classes.items()
                    if rules.max_count is not None and counts.get(name, 0) > rules.max_count]
        ng = [f"defect {i} ({c}): {v.rule}" for i, (c, _, v) in enumerate(defects) if v.verdict == NG]
        if too_many or ng:
            return Verdict(NG, (too_many + ng)[0], tuple(too_many + ng))
        review = [f"defect {i} ({c}): {v.rule}" for i, (c, _, v) in enumerate(defects) if v.verdict == REVIEW]
        if review:
            return Verdict(REVIEW, review[0], tuple(review))
        return Verdict(OK, "no defect beyond its limits" if defects else "no defect")

    def to_dict(self) -> dict:
        return {"product": self.product, "source": self.source,
                "mm_per_px": self.calibration.to_list() if self.calibration else None,
                "quality": dict(self.floors), "unlisted_class": self.unlisted_class.lower(),
                "classes": {name: {**r.limits, **({"max_count": r.max_count} if r.max_count is not None else {}),
                                   **r.floors} for name, r in self.classes.items()}}


def load_rules(path, calibration: Calibration | None = None) -> Rules:
    """Read and validate a rules file; `calibration` replaces the file's `mm_per_px` (a station's own)."""
    path = Path(path)
    return parse_rules(read_yaml_mapping(path, RulesError), str(path), calibration)


def parse_rules(data: dict, source: str = "rules", calibration: Calibration | None = None) -> Rules:
    """Validate a rules mapping; one `RulesError` names every bad field (`source: a.b.c: expected ...`)."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise RulesError(f"{source}: expected a mapping of field: value at the top level, got {type(data).__name__}")
    problems += [f"{key}: unknown field; expected some of {list(TOP_FIELDS)}" for key in data if key not in TOP_FIELDS]
    product = data.get("product")
    if product is not None and not isinstance(product, str):
        problems.append(f"product: expected a name (text), got {product!r}")
    if calibration is None and data.get("mm_per_px") is not None:
        try:
            calibration = Calibration.parse(data["mm_per_px"])
        except InvalidInputError as exc:
            problems.append(str(exc))
    floors = _floors(data.get("quality", {}), "quality", problems, allow_other=False)
    unlisted = _unlisted(data.get("unlisted_class", "review"), problems)
    classes = _classes(data.get("classes"), floors, problems)
    if calibration is None:
        problems += [f"classes.{name}.{limit}: a limit in mm needs a calibration; add mm_per_px (mm per pixel) "
                     "to the file or pass one" for name, rules in classes.items() for limit in rules.limits
                     if limit.endswith(("_mm", "_mm2"))]
    if problems:
        raise RulesError(f"{source}: " + "; ".join(problems))
    return Rules(classes, calibration, floors, unlisted, product, source)


def _classes(raw, file_floors: dict, problems: list) -> dict:
    if not isinstance(raw, dict) or not raw:
        problems.append(f"classes: expected a mapping of class name: limits (at least one class), got {raw!r}")
        return {}
    out = {}
    for name, spec in raw.items():
        where = f"classes.{name}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: expected a mapping of limit: value, got {spec!r}")
            continue
        known = (*LIMITS, "max_count", *FLOORS)
        problems += [f"{where}.{key}: unknown limit; expected some of {list(known)}" for key in spec if key not in known]
        limits = {key: _number(spec[key], f"{where}.{key}", problems) for key in spec if key in LIMITS}
        max_count = spec.get("max_count")
        if max_count is not None and (isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 0):
            problems.append(f"{where}.max_count: expected a whole number >= 0 of defects per part, got {max_count!r}")
            max_count = None
        floors = {**file_floors, **_floors({k: v for k, v in spec.items() if k in FLOORS}, where, problems)}
        out[str(name)] = ClassRules({k: v for k, v in limits.items() if v is not None}, max_count, floors)
    return out


def _floors(raw, where: str, problems: list, allow_other: bool = True) -> dict:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping of {' / '.join(FLOORS)}: value, got {raw!r}")
        return {}
    if not allow_other:
        problems += [f"{where}.{key}: unknown floor; expected some of {list(FLOORS)}" for key in raw if key not in FLOORS]
    out = {}
    for key in FLOORS:
        if key in raw:
            value = raw[key]
            if not is_finite_number(value) or not 0.0 <= value <= 1.0:
                problems.append(f"{where}.{key}: expected a number in [0, 1], got {value!r}")
            else:
                out[key] = float(value)
    return out


def _unlisted(value, problems: list) -> str:
    verdict = str(value).upper() if isinstance(value, str) else None
    if verdict not in VERDICTS:
        problems.append(f"unlisted_class: expected one of ok, ng, review, got {value!r}")
        return REVIEW
    return verdict


def _number(value, where: str, problems: list) -> float | None:
    if not is_finite_number(value) or value < 0:
        problems.append(f"{where}: expected a number >= 0, got {value!r}")
        return None
    return float(value)



def _fmt(value: float) -> str:
    return f"{value:.4g}"

