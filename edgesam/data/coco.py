"""COCO instance annotations: the JSON checked against `runtime/edgesam_runtime/schemas/coco.schema.json`, masks
decoded by pycocotools (COCO's own RLE and polygon code; binary wheels for Linux, Windows and macOS).

What pycocotools' C code does not check is checked here first, because a dataset may come from
anyone: an RLE's runs must cover exactly its height x width (fewer would leave pixels undefined),
its size must be the image's, and polygon coordinates must lie near the image (far-out values overflow
its integer rasterisation). Image file names must resolve inside the dataset folder.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgesam_runtime import schema

from .io import DataError
from .records import ImageRecord

NO_OBJECT_CLASS = "background"
# Polygon points may lie outside the image (annotation tools clip loosely), but not further than
# this many image sides: beyond it they are not pixel coordinates of this image.
POLYGON_REACH = 1.0


# --------------------------------------------------------------------------- masks <-> COCO
def _coco_mask():
    from pycocotools import mask  # loaded when COCO masks are decoded, not when edgesam.data is imported

    return mask


def encode_mask(mask: np.ndarray) -> dict:
    """bool [H,W] -> COCO compressed RLE {"size": [H, W], "counts": str} (pycocotools)."""
    rle = _coco_mask().encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _rle_to_mask(seg: dict, hw: tuple[int, int]) -> np.ndarray:
    coco_mask = _coco_mask()
    h, w = (int(v) for v in seg["size"])
    if (h, w) != tuple(hw):
        raise ValueError(f"RLE size is {h}x{w} (HxW) but the image is {hw[0]}x{hw[1]}")
    counts = seg["counts"]
    if isinstance(counts, list):
        if sum(counts) != h * w:
            raise ValueError(f"RLE counts sum to {sum(counts)}, expected height*width = {h * w}")
        rle = coco_mask.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        return coco_mask.decode(rle).astype(bool)
    compressed = counts.encode("ascii")
    decoded = coco_mask.decode({"size": [h, w], "counts": compressed})
    # Runs that cover fewer than h*w pixels leave the rest undefined (pycocotools checks only "more"):
    # a mask that does not encode back to the same string was not a complete RLE of this size.
    if decoded.max(initial=0) > 1 or coco_mask.encode(np.asfortranarray(decoded))["counts"] != compressed:
        raise ValueError(f"RLE counts do not cover the {h}x{w} mask exactly")
    return decoded.astype(bool)


def _polygons_to_mask(polygons: Sequence[Sequence[float]], hw: tuple[int, int]) -> np.ndarray:
    coco_mask = _coco_mask()
    h, w = hw
    out = np.zeros((h, w), dtype=bool)
    for poly in polygons:
        xy = np.asarray(poly, dtype=np.float64)
        if xy.size < 6 or xy.size % 2:
            raise ValueError(f"polygon needs >= 3 (x, y) pairs, got {xy.size} numbers")
        far = (np.abs(xy[0::2] - w / 2) > (0.5 + POLYGON_REACH) * w) | (np.abs(xy[1::2] - h / 2) > (0.5 + POLYGON_REACH) * h)
        if far.any():
            i = int(np.flatnonzero(far)[0])
            raise ValueError(f"polygon point ({xy[2 * i]:g}, {xy[2 * i + 1]:g}) lies far outside the {w}x{h} "
                             "(width x height) image; expected pixel coordinates of this image")
        out |= coco_mask.decode(coco_mask.frPyObjects([xy.tolist()], h, w)[0]).astype(bool)
    return out


def segmentation_to_mask(seg: Any, hw: tuple[int, int]) -> np.ndarray:
    """A COCO ``segmentation`` value (polygons, RLE dict, list of RLE dicts; checked by the schema) -> bool [H,W]."""
    if isinstance(seg, dict):
        return _rle_to_mask(seg, hw)
    if seg and all(isinstance(s, dict) for s in seg):
        out = np.zeros(hw, dtype=bool)
        for part in seg:
            out |= _rle_to_mask(part, hw)
        return out
    return _polygons_to_mask(seg, hw)


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
    return schema.load_json(path, error=DataError, max_bytes=schema.MAX_ANNOTATION_BYTES)


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file in a dataset folder, parsed by `edgesam_runtime.schema` (size, UTF-8, finite numbers, depth)
    once per (path, mtime, size): layout detection and loading share it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    st = path.stat()
    return _read_json_cached(str(path), st.st_mtime_ns, st.st_size)


def is_coco_candidate(path: str | os.PathLike) -> bool:
    """True for a JSON file in a dataset folder that is, or is meant to be, COCO annotations.

    A dict without ``images`` or ``annotations`` (a report, a config) is someone else's file. A file
    that does not even parse is an error, never "no annotations": a truncated annotations.json must
    not turn a labelled dataset into an unlabelled one.
    """
    data = read_json(path)
    return isinstance(data, dict) and ("images" in data or "annotations" in data)


def _resolve_image(json_dir: Path, file_name: str, where: str) -> Path | None:
    """The image a COCO ``file_name`` names: next to the JSON, under its images/ folder, or by its bare
    name in images/; refused when it resolves outside the JSON's folder (``../``, absolute, links)."""
    rel = Path(file_name)
    for base, name in ((json_dir, file_name), (json_dir / "images", file_name), (json_dir / "images", rel.name)):
        cand = base / name
        if cand.is_file():
            return schema.inside_folder(json_dir, os.path.relpath(cand, json_dir), f"{where}: file_name", DataError)
    if rel.is_absolute() or ".." in rel.parts:
        schema.inside_folder(json_dir, file_name, f"{where}: file_name", DataError)
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
    path = Path(json_path)
    data = read_json(path)
    schema.check(data, "coco", str(path), DataError)
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
        image_path = _resolve_image(path.parent, file_name, where)
        if image_path is None:
            raise DataError(f"{where}: image file {file_name!r} not found next to the JSON or in its images/ folder")
        size = (int(img["height"]), int(img["width"])) if "height" in img and "width" in img else None
        anns = [dict(a, image_size=size) for a in by_image.get(img["id"], [])]
        records.append(ImageRecord(Path(file_name).stem, _majority_class(anns), image_path, None, tuple(anns)))
    return records, sorted(set(cats.values()) | {r.class_name for r in records})
