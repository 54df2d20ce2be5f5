"""Checking a config mapping against a dataclass: the one place that rejects unknown fields."""
from __future__ import annotations

import dataclasses


def checked_fields(cls, data, where: str, error: type[Exception] = ValueError, hint: str | None = None) -> dict:
    """`data` as a dict of `cls`'s fields; `error` names `where` and the fields that do not exist.

    A misspelt field must fail loudly: silently dropped, it would train or export with a default the
    user never chose. `hint` replaces the list of known fields (e.g. "see `edgesam finetune --print-config`").
    """
    if not isinstance(data, dict):
        raise error(f"{where}: expected a mapping of field: value, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise error(f"{where}: unknown fields {unknown}; {hint or f'expected some of {sorted(known)}'}")
    return dict(data)
