"""The one base of the toolchain's config dataclasses (finetune, distill, prune, recovery, export, bench,
pipeline): to and from plain dicts and YAML, flags overriding a file, and one error type that names the
file and the field.

A config is a `@dataclass` that subclasses `Config` and checks its own values in `__post_init__` (or in
`validate()`, where a printed default may leave required paths empty), raising `ConfigError` through the
check helpers below. Unknown fields are refused by name (`edgesam_runtime.fields.checked_fields`): a
misspelt field silently dropped would train or export with a default the user never chose.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import ClassVar

import yaml

from edgesam_runtime.fields import checked_fields
from edgesam_runtime.yamlio import read_yaml_mapping


class ConfigError(ValueError):
    """A config value that is missing, of the wrong type or out of range; names the file or flags and the field."""


def plain(value):
    """`value` as YAML/JSON takes it: configs as dicts, tuples as lists, paths as text, recursively."""
    if isinstance(value, Config):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


class Config:
    """Base of a config dataclass. `WHERE` names it in errors raised without a file (e.g. "export config");
    `HINT` replaces the list of known fields in the unknown-field error (e.g. "see `edgesam finetune
    --print-config`")."""

    WHERE: ClassVar[str] = "config"
    HINT: ClassVar[str | None] = None

    def to_dict(self) -> dict:
        return {f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def defaults(cls) -> dict:
        """Each field's default as to_dict writes it (None for a field without one)."""
        out = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                out[f.name] = plain(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = plain(f.default_factory())
            else:
                out[f.name] = None
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict, where: str | None = None):
        """`cls(**data)`; an unknown field, a wrong type or a bad value is one ConfigError naming `where`."""
        where = where or cls.WHERE
        fields = checked_fields(cls, data, where, ConfigError, cls.HINT)
        try:
            return cls(**fields)
        except (TypeError, ValueError) as exc:  # ConfigError included: prefix where it came from
            raise ConfigError(f"{where}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides):
        """The YAML file's fields, `overrides` (flags; None = not given) winning over the file."""
        data = read_yaml_mapping(path, ConfigError)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data, where=str(path))

    @classmethod
    def load(cls, spec: str | Path | None = None, **flags):
        """What a verb runs with: the spec file's fields (when given) with the flags (None = not given) over them."""
        if spec is not None:
            return cls.from_yaml(spec, **flags)
        return cls.from_dict({k: v for k, v in flags.items() if v is not None}, where="flags")


# ------------------------------------------------------------------------------ checks for __post_init__
def check_choice(name: str, value, options) -> None:
    if value not in options:
        raise ConfigError(f"{name}: expected one of {list(options)}, got {value!r}")


def check_integer(name: str, value, low: int, high: int | None = None) -> None:
    """`value` is an integer (not a bool) >= `low` (and <= `high` when given)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
        expected = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
        raise ConfigError(f"{name}: expected {expected}, got {value!r}")


def check_number(name: str, value, low: float | None = None, high: float | None = None) -> None:
    """`value` is a finite number (not a bool) in [low, high] (either bound may be open: None). NaN passes
    every comparison with a bound, so it is refused by name: a NaN rate trains NaN weights."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            expected = "a number" if low is None else f"a number >= {low:g}"
        else:
            expected = f"a number <= {high:g}" if low is None else f"a number in [{low:g}, {high:g}]"
        raise ConfigError(f"{name}: expected {expected}, got {value!r}")


# Plain annotations the configs use, the types a YAML value of each must have, and their names.
_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "None": (type(None),), "dict": (dict,)}
_TYPE_NAMES = {"int": "an integer", "float": "a number", "str": "text", "bool": "true or false", "None": "null",
               "dict": "a mapping of option: value"}


def shown(value) -> str:
    """`value` as the user wrote it in YAML (null, true), else its repr."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_field_types(cls, data: dict, prefix: str = "") -> None:
    """Each of `data`'s values has the type `cls`'s field declares (where that is a plain int, float, str, bool,
    dict or an optional one): a number given as text fails here by name, not as a TypeError deep in a stage.
    Fields of other types (tuples, nested configs) are left to the config's own checks."""
    declared = {f.name: f.type for f in dataclasses.fields(cls)}
    for name, value in data.items():
        annotation = declared.get(name)
        if not isinstance(annotation, str):
            continue
        kinds = [part.strip() for part in annotation.split("|")]
        if any(kind not in _TYPES for kind in kinds):
            continue
        if not any(isinstance(value, _TYPES[kind]) and not (isinstance(value, bool) and kind in ("int", "float"))
                   for kind in kinds):
            expected = " or ".join(_TYPE_NAMES[kind] for kind in kinds)
            raise ConfigError(f"{prefix}{name}: expected {expected}, got {shown(value)}")
