"""COCO instance annotations: JSON indexing, polygon rasterisation and RLE coding in numpy.

pycocotools is deliberately not a dependency (it needs a C build on the line PCs), so the RLE
formats are implemented here following COCO's ``maskApi.c``: masks are run-length coded in
column-major (Fortran) order, runs alternate background/foreground starting with background, and
the compressed string form stores each run as 5-bit groups offset by 48 (``'0'``), with runs from
the fourth on stored as the difference to the run two places before.
"""

from __future__ import annotations

import functools
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from .io import DataError

NO_OBJECT_CLASS = "background"


# --------------------------------------------------------------------------- RLE
def rle_decode(counts: Sequence[int], height: int, width: int) -> np.ndarray:
    """Uncompressed RLE counts -> bool [H,W] (column-major runs, background first)."""
    runs = np.asarray(counts, dtype=np.int64)
    if runs.size and runs.min() < 0:
        raise ValueError("RLE counts must be non-negative")
    if int(runs.sum()) != height * width:
        raise ValueError(f"RLE counts sum to {int(runs.sum())}, expected height*width = {height * width}")
    values = np.zeros(runs.size, dtype=bool)
    values[1::2] = True
    return np.repeat(values, runs).reshape(width, height).T.copy()


def rle_encode(mask: np.ndarray) -> list[int]:
    """bool [H,W] -> uncompressed RLE counts (column-major, first run is background, may be 0)."""
    flat = np.asarray(mask, dtype=bool).T.ravel()
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    runs = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    return [0] + runs if flat[0] else runs


def rle_counts_from_string(s: str | bytes) -> list[int]:
    """Decode COCO's compressed RLE string (``rleFrString`` in maskApi.c)."""
    data = s.encode("ascii") if isinstance(s, str) else bytes(s)
    counts: list[int] = []
    p = 0
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            if p >= len(data):
                raise ValueError("compressed RLE string ends inside a run")
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)  # sign-extend negative deltas
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_counts_to_string(counts: Sequence[int]) -> str:
    """Encode RLE counts as COCO's compressed string (``rleToString`` in maskApi.c)."""
    out = []
    for i, run in enumerate(counts):
        x = int(run) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


# --------------------------------------------------------------------------- rasterisation
def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """COCO polygons ``[[x0, y0, x1, y1, ...], ...]`` -> bool [H,W] (union, PIL fill + outline)."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in polygons:
        xy = [float(v) for v in poly]
        if len(xy) < 6 or len(xy) % 2:
            raise ValueError(f"polygon needs >= 3 (x, y) pairs, got {len(xy)} numbers")
        draw.polygon(list(zip(xy[0::2], xy[1::2])), fill=1, outline=1)
    return np.asarray(canvas, dtype=bool).copy()


def _rle_dict_to_mask(seg: dict, hw: tuple[int, int]) -> np.ndarray:
    size = seg.get("size")
    if size is None or len(size) != 2:
        raise ValueError("RLE segmentation needs 'size': [height, width]")
    h, w = int(size[0]), int(size[1])
    if (h, w) != tuple(hw):
        raise ValueError(f"RLE size is {h}x{w} (HxW) but the image is {hw[0]}x{hw[1]}")
    counts = seg.get("counts")
    if isinstance(counts, (str, bytes)):
        counts = rle_counts_from_string(counts)
    if not isinstance(counts, (list, tuple)):
        raise ValueError(f"RLE 'counts' must be a list or a string, got {type(counts).__name__}")
    return rle_decode(counts, h, w)


def segmentation_to_mask(seg: Any, hw: tuple[int, int]) -> np.ndarray:
    """Any COCO ``segmentation`` value (polygons, RLE dict, list of RLE dicts) -> bool [H,W]."""
    h, w = hw
    if isinstance(seg, dict):
        return _rle_dict_to_mask(seg, hw)
    if isinstance(seg, list):
        if seg and all(isinstance(s, dict) for s in seg):
            out = np.zeros((h, w), dtype=bool)
            for part in seg:
                out |= _rle_dict_to_mask(part, hw)
            return out
        return polygons_to_mask(seg, h, w)
    raise ValueError(f"segmentation must be polygons (list) or RLE (dict), got {type(seg).__name__}")


def annotations_to_masks(anns: Sequence[dict], hw: tuple[int, int], image_path: Path | str) -> np.ndarray:
    """Decode an image's annotations into bool [K,H,W] (crowd regions kept as objects).

    Errors name the image, the annotation id and what was wrong; the size declared in the JSON is
    checked against the real image because a mismatch means the JSON belongs to other files.
    """
    h, w = hw
    declared = {tuple(a["image_size"]) for a in anns if a.get("image_size")}
    for size in declared:
        if size != (h, w):
            raise DataError(f"size mismatch: image {image_path} is {h}x{w} (HxW) but the COCO JSON "
                            f"declares {size[0]}x{size[1]}")
    masks = np.zeros((len(anns), h, w), dtype=bool)
    for k, ann in enumerate(anns):
        try:
            masks[k] = segmentation_to_mask(ann["segmentation"], hw)
        except (ValueError, TypeError, KeyError) as exc:
            raise DataError(f"{image_path}: COCO annotation id {ann.get('id')}: {exc}") from exc
    return masks


# --------------------------------------------------------------------------- JSON indexing
@functools.lru_cache(maxsize=4)
def _read_json_cached(path: str, mtime_ns: int, size: int) -> Any:
    with open(path, "rb") as fh:
        return json.load(fh)


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file once per (path, mtime, size): layout detection and loading share it."""
    path = Path(path)
    try:
        st = path.stat()
        return _read_json_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: invalid JSON ({exc})") from exc


def looks_like_coco(path: str | os.PathLike) -> bool:
    """True when ``path`` parses as a dict with ``images`` and ``annotations`` lists."""
    try:
        data = read_json(path)
    except DataError:
        return False
    return isinstance(data, dict) and isinstance(data.get("images"), list) and isinstance(
        data.get("annotations"), list)


def _resolve_image(json_dir: Path, file_name: str) -> Path | None:
    rel = Path(file_name)
    for cand in (json_dir / rel, json_dir / "images" / rel, json_dir / "images" / rel.name):
        if cand.is_file():
            return cand
    return None


def _require(obj: dict, key: str, where: str, kind: type | tuple) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(f"{where}: missing field {key!r}")
    if not isinstance(obj[key], kind):
        raise DataError(f"{where}: field {key!r} has type {type(obj[key]).__name__}, expected "
                        f"{getattr(kind, '__name__', kind)}")
    return obj[key]


def _majority_class(anns: Sequence[dict]) -> str:
    if not anns:
        return NO_OBJECT_CLASS
    counts = Counter(a["category"] for a in anns)
    best = max(counts.values())
    return sorted(c for c, n in counts.items() if n == best)[0]


def _index_annotations(data: dict, path: Path, cats: dict, image_ids: set) -> dict[Any, list[dict]]:
    by_image: dict[Any, list[dict]] = {}
    for i, ann in enumerate(data["annotations"]):
        where = f"{path}: annotations[{i}] (id {ann.get('id') if isinstance(ann, dict) else '?'})"
        image_id = _require(ann, "image_id", where, (int, str))
        cat_id = _require(ann, "category_id", where, (int, str))
        if "segmentation" not in ann:
            raise DataError(f"{where}: missing field 'segmentation' (bbox-only annotations carry no mask)")
        if image_id not in image_ids:
            raise DataError(f"{where}: image_id {image_id} is not in 'images'")
        if cat_id not in cats:
            raise DataError(f"{where}: category_id {cat_id} is not in 'categories'")
        by_image.setdefault(image_id, []).append({
            "id": ann.get("id", i), "category": cats[cat_id], "segmentation": ann["segmentation"],
            "iscrowd": int(ann.get("iscrowd", 0)),
        })
    return by_image


def load_coco_records(json_path: str | os.PathLike):
    """Index a COCO JSON: (records, class names). Image files are looked up next to the JSON, then
    in its ``images/`` folder; a listed image that cannot be found is a DataError naming it.

    An image's ``class_name`` is its most frequent category (``"background"`` when it has no
    annotations), which is what the per-class split stratifies on.
    """
    from .datasets import ImageRecord

    path = Path(json_path)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a COCO JSON object with 'images', 'annotations', 'categories'")
    images = _require(data, "images", str(path), list)
    _require(data, "annotations", str(path), list)
    cats = {}
    for i, c in enumerate(data.get("categories", [])):
        where = f"{path}: categories[{i}]"
        cats[_require(c, "id", where, (int, str))] = str(_require(c, "name", where, str))
    image_ids = set()
    for i, img in enumerate(images):
        image_ids.add(_require(img, "id", f"{path}: images[{i}]", (int, str)))
    by_image = _index_annotations(data, path, cats, image_ids)
    records = []
    for i, img in enumerate(images):
        where = f"{path}: images[{i}]"
        file_name = _require(img, "file_name", where, str)
        image_path = _resolve_image(path.parent, file_name)
        if image_path is None:
            raise DataError(f"{where}: image file {file_name!r} not found next to the JSON or in its images/ folder")
        size = (int(img["height"]), int(img["width"])) if "height" in img and "width" in img else None
        anns = [dict(a, image_size=size) for a in by_image.get(img["id"], [])]
        records.append(ImageRecord(Path(file_name).stem, _majority_class(anns), image_path, None, tuple(anns)))
    return records, sorted(set(cats.values()) | {r.class_name for r in records})
