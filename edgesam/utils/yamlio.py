"""Reading a YAML spec file: one place for the 'is it readable, is it a mapping' checks every verb needs."""
from __future__ import annotations

from pathlib import Path

import yaml


def read_yaml_mapping(path: str | Path, error: type[Exception] = ValueError) -> dict:
    """The top-level mapping of a YAML file ({} for an empty file); `error` names the file and the problem."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{path}: not a readable YAML spec ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of field: value at the top level, got {type(data).__name__}")
    return data
