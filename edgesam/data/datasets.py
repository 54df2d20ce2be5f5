"""Dataset indexing and loading: images/ + masks/ folders, per-class folders and COCO JSON.

A :class:`Dataset` is a light index of :class:`ImageRecord` entries; pixels are read only in
:meth:`Dataset.load`, so indexing a few thousand line images is instant and a training loader can
read samples lazily in worker processes.

Mask semantics (see :func:`mask_to_objects`): a binary mask with several separate regions means
several objects (8-connectivity), an instance-id label image means one object per id. Connected
components are labelled in numpy (no scipy), by linking runs of foreground pixels between rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .coco import annotations_to_masks, is_coco_candidate, load_coco_records
from .io import DataError, list_images, read_image, read_mask
from .records import ImageRecord, Sample

MASK_MODES = ("auto", "binary", "instance")
DEFAULT_MIN_AREA = 16
# "auto" rule thresholds, see resolve_mask_mode().
_BINARY_SHARE = 0.90
_MAX_INSTANCE_IDS = 64
_FLAT_LABELS = 0.80

LAYOUT_HELP = (
    "expected one of: a folder with images/ and masks/ (matching stems); a folder with images/ only "
    "(unlabelled); a COCO JSON file, or a folder holding one COCO *.json plus its images; or a folder "
    "of such datasets, one subfolder per class"
)


# --------------------------------------------------------------------------- connected components
def _foreground_runs(fg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Horizontal runs of True pixels as (row, start_col, end_col_exclusive), raster order."""
    h, w = fg.shape
    padded = np.zeros((h, w + 2), dtype=np.int8)
    padded[:, 1:-1] = fg
    d = np.diff(padded, axis=1)
    rows, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)
    return rows, starts, ends


def _expand_ranges(lo: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each i, the integers lo[i] .. lo[i]+counts[i]-1; returns (owner index, value)."""
    total = int(counts.sum())
    owner = np.repeat(np.arange(lo.size), counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.repeat(lo, counts) + offsets


def _link_runs(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, width: int):
    """Pairs (a, b) of runs in consecutive rows that touch under 8-connectivity.

    Runs are keyed row*stride + col so that one searchsorted per bound finds, for every run, the
    contiguous block of runs in the next row whose column span overlaps [start-1, end].
    """
    stride = width + 3
    last = ends - 1  # inclusive end column
    start_key = rows * stride + starts + 1
    end_key = rows * stride + last + 1
    lo = np.searchsorted(end_key, (rows + 1) * stride + starts, side="left")
    hi = np.searchsorted(start_key, (rows + 1) * stride + last + 2, side="right")
    counts = np.clip(hi - lo, 0, None)
    return _expand_ranges(lo, counts)


def _union_roots(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Vectorised union-find (hook to the smaller root, then pointer-jump to full compression)."""
    parent = np.arange(n)
    while a.size:
        pa, pb = parent[a], parent[b]
        differ = pa != pb
        if not differ.any():
            break
        a, b, pa, pb = a[differ], b[differ], pa[differ], pb[differ]
        np.minimum.at(parent, np.maximum(pa, pb), np.minimum(pa, pb))
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    return parent


def _run_components(fg: np.ndarray):
    """Foreground runs and the component index of each run (components in raster order)."""
    rows, starts, ends = _foreground_runs(fg)
    if rows.size == 0:
        return rows, starts, ends, np.zeros(0, dtype=np.int64), 0
    a, b = _link_runs(rows, starts, ends, fg.shape[1])
    roots = _union_roots(rows.size, a, b)
    _, comp = np.unique(roots, return_inverse=True)  # roots are first runs: raster order
    return rows, starts, ends, comp.ravel(), int(comp.max()) + 1


def label_components(fg: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean image.

    Returns an int32 label image (0 = background, 1..n in raster order of each component's first
    pixel) and n. A few ms for a 600x600 mask with a few regions.
    """
    fg = np.asarray(fg, dtype=bool)
    if fg.ndim != 2:
        raise ValueError(f"label_components expects a 2-D mask, got shape {fg.shape}")
    h, w = fg.shape
    rows, starts, ends, comp, n = _run_components(fg)
    labels = np.zeros(h * w, dtype=np.int32)
    lengths = ends - starts
    _, pix = _expand_ranges(rows * w + starts, lengths)
    labels[pix] = np.repeat(comp.astype(np.int32) + 1, lengths)
    return labels.reshape(h, w), n


# --------------------------------------------------------------------------- mask semantics
def _value_counts(mask: np.ndarray) -> np.ndarray:
    return np.bincount(mask.ravel(), minlength=256)


def _neighbour_agreement(mask: np.ndarray) -> float:
    """Share of horizontally/vertically adjacent non-zero pixel pairs that hold the same value.

    Near 1 for label images (flat ids inside objects), low for soft or JPEG-noisy masks whose
    non-zero values vary from pixel to pixel.
    """
    agree = total = 0
    for a, b in ((mask[:, 1:], mask[:, :-1]), (mask[1:, :], mask[:-1, :])):
        both = (a != 0) & (b != 0)
        total += int(both.sum())
        agree += int((both & (a == b)).sum())
    return agree / total if total else 0.0


def resolve_mask_mode(mask: np.ndarray, counts: np.ndarray | None = None) -> str:
    """Decide how an ``auto`` mask is read: ``"binary"`` or ``"instance"``.

    Rule, in order (counts are over the whole mask):

    1. at most one distinct non-zero value (0/255, 0/1, 0/200, empty) -> binary;
    2. 16-bit mask with values above 255 -> instance (a 16-bit label image);
    3. 255 present and >= 90 % of pixels are 0 or 255 -> binary: the other values are anti-aliased
       or JPEG-compressed edges, as in the magnetic-tile masks;
    4. at most 64 distinct non-zero values, none of them 255, and flat regions (>= 80 % of adjacent
       non-zero pixel pairs share their value) -> instance ids;
    5. anything else (soft masks, JPEG noise) -> binary, foreground = value > 127.

    Pass ``mask_mode="binary"`` or ``"instance"`` to override, e.g. for VOC-style instance masks
    that mark borders with 255.
    """
    counts = _value_counts(mask) if counts is None else counts
    nonzero = np.flatnonzero(counts[1:]) + 1
    if nonzero.size <= 1:
        return "binary"
    if nonzero[-1] > 255:
        return "instance"
    has_255 = counts[255] > 0
    if has_255 and (counts[0] + counts[255]) >= _BINARY_SHARE * mask.size:
        return "binary"
    if not has_255 and nonzero.size <= _MAX_INSTANCE_IDS and _neighbour_agreement(mask) >= _FLAT_LABELS:
        return "instance"
    return "binary"


def binary_foreground(mask: np.ndarray, counts: np.ndarray | None = None) -> np.ndarray:
    """Foreground of a binary mask: value > 127, or any non-zero value when only one is used.

    The single-value case keeps 0/1 masks (numpy dumps) and 0/N masks usable without a flag.
    """
    counts = _value_counts(mask) if counts is None else counts
    if np.count_nonzero(counts[1:]) == 1:
        return mask != 0
    return mask > 127


def _binary_objects(fg: np.ndarray, min_area: int, count_only: bool):
    """Components of ``fg`` with >= min_area pixels, built from runs (no full-image label pass)."""
    h, w = fg.shape
    rows, starts, ends, comp, n = _run_components(fg)
    lengths = ends - starts
    keep = np.bincount(comp, weights=lengths, minlength=n) >= max(min_area, 1)
    if count_only:
        return int(keep.sum())
    new_id = np.cumsum(keep) - 1
    sel = keep[comp]
    masks = np.zeros((int(keep.sum()), h * w), dtype=bool)
    _, pix = _expand_ranges(rows[sel] * w + starts[sel], lengths[sel])
    masks[np.repeat(new_id[comp[sel]], lengths[sel]), pix] = True
    return masks.reshape(-1, h, w)


def _instance_objects(mask: np.ndarray, min_area: int, count_only: bool):
    h, w = mask.shape
    flat = mask.ravel()
    areas = np.bincount(flat)
    ids = np.flatnonzero(areas >= max(min_area, 1))
    ids = ids[ids != 0]
    if count_only:
        return int(ids.size)
    lookup = np.full(areas.size, -1, dtype=np.int64)
    lookup[ids] = np.arange(ids.size)
    k = lookup[flat]
    pix = np.flatnonzero(k >= 0)
    masks = np.zeros((ids.size, h * w), dtype=bool)
    masks[k[pix], pix] = True
    return masks.reshape(ids.size, h, w)


def _objects(mask: np.ndarray, mode: str, min_area: int, count_only: bool):
    if mode not in MASK_MODES:
        raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mode!r}")
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if mask.dtype == bool:
        mask = mask.astype(np.uint8)
    counts = _value_counts(mask)
    if mode == "auto":
        mode = resolve_mask_mode(mask, counts)
    if mode == "binary":
        return _binary_objects(binary_foreground(mask, counts), min_area, count_only)
    return _instance_objects(mask, min_area, count_only)


def mask_to_objects(mask: np.ndarray, mode: str = "auto", min_area: int = DEFAULT_MIN_AREA) -> np.ndarray:
    """Split a stored label image into boolean object masks [K,H,W].

    ``binary``: foreground per :func:`binary_foreground`, each 8-connected region one object,
    regions smaller than ``min_area`` pixels dropped (specks from JPEG noise or annotation slips).
    ``instance``: each distinct non-zero value is one object; objects with fewer than ``min_area``
    pixels are dropped. ``auto``: chosen per mask by :func:`resolve_mask_mode`. Objects are ordered
    by first pixel in raster order (binary) or by id (instance).
    """
    return _objects(mask, mode, min_area, count_only=False)


def count_objects(mask: np.ndarray, mode: str = "auto", min_area: int = DEFAULT_MIN_AREA) -> int:
    """Number of objects :func:`mask_to_objects` would return, without building the masks."""
    return _objects(mask, mode, min_area, count_only=True)


def filter_min_area(masks: np.ndarray, min_area: int) -> np.ndarray:
    """Drop objects with fewer than ``min_area`` pixels (used for COCO objects)."""
    return masks[masks.sum(axis=(1, 2)) >= max(min_area, 1)]


def _check_same_size(image: np.ndarray, mask_hw: tuple[int, int], image_path: Path, label_src: str) -> None:
    ih, iw = image.shape[:2]
    if (ih, iw) != tuple(mask_hw):
        mh, mw = mask_hw
        raise DataError(
            f"size mismatch: image {image_path} is {ih}x{iw} (HxW) but mask {label_src} is {mh}x{mw}"
        )


class Dataset:
    """Lazy index of a dataset: records plus the settings needed to turn files into objects.

    ``classes`` is the class vocabulary (sorted) and is kept by :meth:`subset`, so train and val
    splits agree on class indices even when a class is missing from one of them.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        records: Sequence[ImageRecord],
        classes: Iterable[str] | None = None,
        *,
        min_area: int = DEFAULT_MIN_AREA,
        mask_mode: str = "auto",
        labelled: bool | None = None,
        unlabelled_classes: Iterable[str] = (),
        layout: str = "",
    ) -> None:
        if mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mask_mode!r}")
        self.root = Path(root)
        self.records: list[ImageRecord] = list(records)
        self.classes: list[str] = sorted(set(classes) if classes is not None else {r.class_name for r in self.records})
        self.min_area = int(min_area)
        self.mask_mode = mask_mode
        self.labelled = all(r.labelled for r in self.records) if labelled is None else bool(labelled)
        self.unlabelled_classes: list[str] = sorted(unlabelled_classes)
        self.layout = layout

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Sample:
        return self.load(i)

    def __repr__(self) -> str:
        return (f"Dataset(root={str(self.root)!r}, layout={self.layout!r}, records={len(self)}, "
                f"classes={self.classes}, labelled={self.labelled})")

    def load(self, i: int) -> Sample:
        """Read image ``i`` and its objects; raises DataError naming the files on any problem."""
        rec = self.records[i]
        image = read_image(rec.image_path)
        h, w = image.shape[:2]
        if rec.mask_path is not None:
            stored = read_mask(rec.mask_path)
            _check_same_size(image, stored.shape, rec.image_path, str(rec.mask_path))
            masks = mask_to_objects(stored, self.mask_mode, self.min_area)
        elif rec.coco_anns is not None:
            masks = filter_min_area(annotations_to_masks(rec.coco_anns, (h, w), rec.image_path), self.min_area)
        else:
            masks = np.zeros((0, h, w), dtype=bool)
        return Sample(rec.stem, rec.class_name, image, masks, rec.image_path)

    def joined(self, other: "Dataset") -> "Dataset":
        """This dataset's records followed by `other`'s (e.g. a new line's images and replayed earlier
        ones), one class vocabulary; the mask settings must agree, or the same file would give other objects."""
        if (other.min_area, other.mask_mode) != (self.min_area, self.mask_mode):
            raise ValueError(f"{other.root}: min_area/mask_mode {other.min_area}/{other.mask_mode} differ from "
                             f"{self.root}'s {self.min_area}/{self.mask_mode}")
        return Dataset(self.root, self.records + other.records, set(self.classes) | set(other.classes),
                       min_area=self.min_area, mask_mode=self.mask_mode, labelled=self.labelled and other.labelled,
                       unlabelled_classes=set(self.unlabelled_classes) | set(other.unlabelled_classes),
                       layout=self.layout)

    def subset(self, indices: Iterable[int]) -> "Dataset":
        """A dataset over the chosen records, same root, classes and mask settings."""
        return Dataset(
            self.root, [self.records[i] for i in indices], self.classes, min_area=self.min_area,
            mask_mode=self.mask_mode, labelled=self.labelled,
            unlabelled_classes=self.unlabelled_classes, layout=self.layout,
        )


# --------------------------------------------------------------------------- layout detection
def _by_stem(paths: list[Path], what: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in paths:
        if p.stem in out:
            raise DataError(f"two {what} files share the stem {p.stem!r}: {out[p.stem]} and {p}; "
                            "stems must be unique to pair images with masks")
        out[p.stem] = p
    return out


def pair_records(folder: Path, class_name: str) -> list[ImageRecord]:
    """Records of an images/ + masks/ folder; an image without a mask is an error."""
    images = _by_stem(list_images(folder / "images", root=folder), "image")
    masks = _by_stem(list_images(folder / "masks", root=folder), "mask")
    records = []
    for stem, image_path in images.items():
        mask_path = masks.get(stem)
        if mask_path is None:
            raise DataError(f"{image_path}: no mask with stem {stem!r} in {folder / 'masks'} "
                            "(a labelled dataset needs one mask per image)")
        records.append(ImageRecord(stem, class_name, image_path, mask_path))
    return records


def unlabelled_records(folder: Path, class_name: str) -> list[ImageRecord]:
    images = _by_stem(list_images(folder / "images", root=folder), "image")
    return [ImageRecord(stem, class_name, p) for stem, p in images.items()]


def find_coco_json(folder: Path) -> Path | None:
    """The single COCO JSON in ``folder`` (other valid JSON files, e.g. reports, are ignored; one that
    does not parse is a DataError naming it, never a reason to call the folder unlabelled)."""
    found = [p for p in sorted(folder.glob("*.json")) if p.is_file() and is_coco_candidate(p)]
    if len(found) > 1:
        raise DataError(f"{folder}: {len(found)} COCO JSON files ({', '.join(p.name for p in found)}); "
                        "pass the one to use as the dataset path")
    return found[0] if found else None


def _leaf_layout(path: Path) -> str | None:
    """Layout of a single dataset folder/file (no per-class look-down), or None."""
    if path.is_file():
        return "coco" if path.suffix.lower() == ".json" else None
    if not path.is_dir():
        return None
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return "pairs"
    if find_coco_json(path) is not None:
        return "coco"
    if (path / "images").is_dir():
        return "unlabelled"
    return None


def detect_layout(path: Path) -> str:
    """``pairs``, ``unlabelled``, ``coco``, ``per_class`` or ``unknown`` for a dataset path.

    Per-class detection looks exactly one level down, so a wrong path never walks a whole tree.
    """
    path = Path(path)
    leaf = _leaf_layout(path)
    if leaf is not None:
        return leaf
    if path.is_dir() and class_folders(path):
        return "per_class"
    return "unknown"


def class_folders(path: Path) -> list[Path]:
    """Subfolders of ``path`` that are single datasets (one per class), sorted by name."""
    subs = [p for p in sorted(Path(path).iterdir()) if p.is_dir() and not p.name.startswith(".")]
    return [p for p in subs if _leaf_layout(p) is not None]


def _load_per_class(path: Path, min_area: int, mask_mode: str) -> Dataset:
    labelled: list[ImageRecord] = []
    unlabelled: list[ImageRecord] = []
    classes: set[str] = set()
    unlabelled_classes: list[str] = []
    for sub in class_folders(path):
        layout = _leaf_layout(sub)
        if layout == "pairs":
            labelled += pair_records(sub, sub.name)
            classes.add(sub.name)
        elif layout == "coco":
            recs, cats = load_coco_records(find_coco_json(sub))
            labelled += recs
            classes.update(cats)
        else:
            unlabelled += unlabelled_records(sub, sub.name)
            unlabelled_classes.append(sub.name)
    if not classes:  # only unlabelled class folders: the whole thing is an unlabelled set
        return Dataset(path, unlabelled, unlabelled_classes, min_area=min_area, mask_mode=mask_mode,
                       labelled=False, layout="per_class")
    return Dataset(path, labelled, classes, min_area=min_area, mask_mode=mask_mode, labelled=True,
                   unlabelled_classes=unlabelled_classes, layout="per_class")


def load_dataset(path: str | os.PathLike, min_area: int = DEFAULT_MIN_AREA, mask_mode: str = "auto") -> Dataset:
    """Index a dataset, detecting its layout.

    1. ``images/`` + ``masks/``: pairs by stem, class = folder name; an image without a mask is a
       DataError naming it (a silent drop would bias training towards annotated-easy images).
    2. ``images/`` only: unlabelled (``labelled=False``, samples with K=0).
    3. COCO JSON file, or a folder with one COCO ``*.json``: polygons and RLE, class = category.
    4. a folder of such datasets, one per class: labelled subfolders form the dataset; unlabelled
       ones (e.g. ``free/`` defect-free surfaces) are listed in ``unlabelled_classes`` only.

    Nothing but file names is read here; pixels are read by :meth:`Dataset.load`.
    """
    if mask_mode not in MASK_MODES:
        raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mask_mode!r}")
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: dataset path does not exist ({LAYOUT_HELP})")
    layout = detect_layout(path)
    if layout == "pairs":
        return Dataset(path, pair_records(path, path.name), min_area=min_area, mask_mode=mask_mode,
                       labelled=True, layout=layout)
    if layout == "unlabelled":
        return Dataset(path, unlabelled_records(path, path.name), min_area=min_area,
                       mask_mode=mask_mode, labelled=False, layout=layout)
    if layout == "coco":
        json_path = path if path.is_file() else find_coco_json(path)
        records, cats = load_coco_records(json_path)
        return Dataset(json_path.parent, records, cats, min_area=min_area, mask_mode=mask_mode,
                       labelled=True, layout=layout)
    if layout == "per_class":
        return _load_per_class(path, min_area, mask_mode)
    raise DataError(f"{path}: not a dataset; {LAYOUT_HELP}")
