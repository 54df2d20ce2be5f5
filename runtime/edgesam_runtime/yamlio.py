"""Reading a YAML spec file: one place for the 'is it readable, is it a mapping' checks every verb needs."""
from __future__ import annotations

from pathlib import Path

from edgesam_runtime import schema


def read_yaml_mapping(path: str | Path, error: type[Exception] = ValueError) -> dict:
    """The top-level mapping of a YAML file ({} for an empty file); `error` names the file and the problem.

    Size, encoding, depth and alias bombs are checked by `edgesam_runtime.schema.load_yaml`; the fields by the
    config that reads the mapping.
    """
    path = Path(path)
    data = schema.load_yaml(path, error)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping of field: value at the top level, got {type(data).__name__}")
    bad_keys = [key for key in data if not isinstance(key, str)]
    if bad_keys:
        raise error(f"{path}: field {bad_keys[0]!r}: expected field names (text) at the top level")
    return data
