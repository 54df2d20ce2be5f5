"""Reading structured files from disk: one place checks every JSON and YAML file edgesam reads that is
not a tensor (bundle manifests, recorded architectures, prompt files, adapter records, COCO
annotations, YAML specs) before any of its values is used.

Two steps, each ending in one `SchemaError` line that names the file and the field:

1. `load_json` / `load_yaml`: the file's size, its encoding (UTF-8), its syntax, numbers that are
   finite (no NaN, Infinity or 1e999), and how deep and how large the parsed structure is (a JSON or
   YAML "bomb" is refused before anything walks it).
2. `check`: a JSON Schema (draft 2020-12, the `jsonschema` library) from `edgesam_runtime/schemas/`: types,
   ranges, sizes and required fields. The schemas are plain JSON so that C++ integrators can validate
   a bundle's manifest with their own validator (docs/bundle.md).

Paths read from these files are confined to their folder by `inside_folder`. Torch-free and
numpy-free: the runtime uses it.
"""
from __future__ import annotations

import functools
import json
import math
from importlib import resources
from pathlib import Path

SCHEMAS = ("arch", "manifest", "prompts", "adapter", "coco")
MAX_DEPTH = 32  # nesting of objects/arrays; edgesam's own files use at most 8
MAX_NODES = 20_000_000  # values in one parsed file (a YAML alias bomb expands far beyond)
MAX_BYTES = 64 * 2**20  # manifests, specs, prompt files, records
MAX_ANNOTATION_BYTES = 1024 * 2**20  # COCO annotation files of large datasets


class SchemaError(ValueError):
    """A structured file that cannot be read or does not match its schema (names the file and the field)."""


# ------------------------------------------------------------------------------------ reading
def _read_text(path: Path, max_bytes: int, error: type[Exception]) -> str:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise error(f"{path}: {size} bytes; expected at most {max_bytes} for this kind of file")
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                    "expected a UTF-8 JSON/YAML file") from None


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows (expected finite numbers)")


def _unique_keys(pairs: list) -> dict:
    """A JSON object whose keys are all different: Python's json keeps the last of a repeated key without a
    word, so `{"crack": {...}, "crack": {...}}` would drop the first's fields."""
    value = dict(pairs)
    if len(value) != len(pairs):
        seen = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"field {repeated!r} given twice in one object")
    return value


def parse_json(text: str, where: str, error: type[Exception] = None):
    """JSON text -> value, refusing NaN/Infinity, numbers out of float range and too-deep nesting."""
    error = error or SchemaError
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float,
                           object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not valid JSON ({exc})") from None
    except RecursionError:
        raise error(f"{where}: nested deeper than {MAX_DEPTH} levels; not an edgesam file") from None
    except ValueError as exc:  # our hooks, and integers longer than Python converts
        raise error(f"{where}: not valid JSON ({exc})") from None
    check_size(value, where, error)
    return value


def load_json(path: str | Path, schema: str | None = None, error: type[Exception] = None,
              max_bytes: int = MAX_BYTES):
    """Read, parse and (with `schema`) check a JSON file; any problem is one `error` naming the file."""
    error = error or SchemaError
    path = Path(path)
    value = parse_json(_read_text(path, max_bytes, error), str(path), error)
    if schema is not None:
        check(value, schema, str(path), error)
    return value


@functools.lru_cache(maxsize=None)
def _unique_key_loader():
    """yaml.SafeLoader (no tags that build objects) that also refuses a key given twice in one mapping: YAML
    requires unique keys but PyYAML keeps the last one silently, so a rules file's second `crack:` entry would
    drop the first's limits without a word. Keys merged in with `<<:` may still be overridden, as YAML allows."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if isinstance(key, (str, int, float, bool)) or key is None:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"field {key!r} given twice in one mapping", key_node.start_mark)
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def load_yaml(path: str | Path, error: type[Exception] = None, max_bytes: int = MAX_BYTES):
    """Read and parse a YAML file safely (no tags that build objects, no repeated keys), then bound its size."""
    import yaml

    error = error or SchemaError
    path = Path(path)
    text = _read_text(path, max_bytes, error)
    try:
        value = yaml.load(text, Loader=_unique_key_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise error(f"{path}: not a readable YAML spec ({' '.join(str(exc).split())})") from None
    except RecursionError:
        raise error(f"{path}: nested deeper than {MAX_DEPTH} levels; not an edgesam spec") from None
    check_size(value, str(path), error)
    return value


def check_size(value, where: str, error: type[Exception] = None) -> None:
    """Refuse structures nested deeper than MAX_DEPTH or holding more than MAX_NODES values, and
    numbers that are not finite (YAML's .nan and .inf; JSON's are refused while parsing).

    Iterative and counting shared references each time they are reached, so a YAML alias bomb (a few
    lines that expand to billions of values) is refused after MAX_NODES steps, not walked to the end.
    """
    error = error or SchemaError
    stack, nodes = [(value, ())], 0
    while stack:
        item, path = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise error(f"{where}: more than {MAX_NODES} values (an alias or size bomb?); not an edgesam file")
        if isinstance(item, float) and not math.isfinite(item):
            raise error(f"{where}: field {field_name(path)}: {item} is not a finite number")
        if isinstance(item, (dict, list)):
            if len(path) >= MAX_DEPTH:
                raise error(f"{where}: nested deeper than {MAX_DEPTH} levels; not an edgesam file")
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((child, path + (key,)) for key, child in pairs)


# ------------------------------------------------------------------------------------ schemas
@functools.lru_cache(maxsize=None)
def _validator(name: str):
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    documents = {n: json.loads(resources.files("edgesam_runtime.schemas").joinpath(f"{n}.schema.json").read_text())
                 for n in SCHEMAS}
    registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc)) for doc in documents.values())
    return Draft202012Validator(documents[name], registry=registry)


def schema_document(name: str) -> dict:
    """The JSON Schema `name` (one of SCHEMAS) as a dict."""
    return _validator(name).schema


def field_name(path) -> str:
    """A JSON path as the dotted field name the messages use: graphs.fp32.encoder.file, images[3].id."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def check(value, schema: str, where: str, error: type[Exception] = None) -> None:
    """Validate `value` against schema `schema`; the most relevant violation becomes one `error`."""
    from jsonschema.exceptions import best_match

    error = error or SchemaError
    problem = best_match(_validator(schema).iter_errors(value))
    if problem is not None:
        shown = problem.message if len(problem.message) <= 200 else problem.message[:200] + "..."
        if problem.validator == "pattern" and "description" in problem.schema:  # say what, not the regex
            shown = f"{problem.instance!r}: expected {problem.schema['description']}"
        raise error(f"{where}: field {field_name(problem.absolute_path)}: {shown}")


# ------------------------------------------------------------------------------------ paths
def inside_folder(folder: str | Path, name: str, where: str, error: type[Exception] = None) -> Path:
    """`folder / name`, refused unless it resolves (links included) to a place inside `folder`.

    A file list from a bundle or dataset someone else made must not reach /etc/passwd or another
    project: absolute names, `..` and symbolic links that lead out are all refused.
    """
    error = error or SchemaError
    if not isinstance(name, str) or not name or "\x00" in name:
        raise error(f"{where}: expected a file name inside {folder}, got {name!r}")
    base = Path(folder).resolve()
    if Path(name).is_absolute():
        raise error(f"{where}: {name!r} is an absolute path; expected a file inside {folder}")
    target = (base / name).resolve()
    if target != base and base not in target.parents:
        raise error(f"{where}: {name!r} leads outside {folder} (to {target}); expected a file inside it")
    return Path(folder) / name
