"""Dataset validation that reads every file and reports, instead of stopping at the first problem.

``load_dataset`` fails fast (right for training); ``check_dataset`` is for the person preparing the
data: it never raises on bad files and lists every one of them with its path, per class, so a
folder of a thousand line images can be fixed in one pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .coco import annotations_to_masks, load_coco_records
from .datasets import (DEFAULT_MIN_AREA, LAYOUT_HELP, _leaf_layout, class_folders, detect_layout,
                       count_objects, filter_min_area, find_coco_json)
from .io import IMAGE_EXTENSIONS, DataError, list_images, read_image, read_mask


@dataclass
class ClassReport:
    """Counts for one class. ``min_hw``/``max_hw`` are element-wise [H, W] bounds over its images."""

    name: str
    labelled: bool = True
    images: int = 0
    pairs: int = 0
    objects: int = 0
    min_hw: list[int] | None = None
    max_hw: list[int] | None = None
    empty_masks: int = 0
    size_mismatches: int = 0
    unreadable: int = 0
    bad_labels: int = 0
    images_without_masks: int = 0
    masks_without_images: int = 0

    def add_size(self, hw: tuple[int, int]) -> None:
        h, w = int(hw[0]), int(hw[1])
        self.min_hw = [h, w] if self.min_hw is None else [min(self.min_hw[0], h), min(self.min_hw[1], w)]
        self.max_hw = [h, w] if self.max_hw is None else [max(self.max_hw[0], h), max(self.max_hw[1], w)]

    @property
    def problems(self) -> int:
        """Error count: what would make ``load_dataset``/``Dataset.load`` fail."""
        return self.size_mismatches + self.unreadable + self.bad_labels + self.images_without_masks

    def size_range(self) -> str:
        if self.min_hw is None:
            return "-"
        lo, hi = "x".join(map(str, self.min_hw)), "x".join(map(str, self.max_hw))
        return lo if lo == hi else f"{lo}..{hi}"

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["problems"] = self.problems
        return d


@dataclass
class DatasetReport:
    """Result of :func:`check_dataset`: per-class counts, errors and warnings (each names a file)."""

    root: Path
    layout: str = "unknown"
    min_area: int = DEFAULT_MIN_AREA
    classes: dict[str, ClassReport] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def class_report(self, name: str, labelled: bool = True) -> ClassReport:
        if name not in self.classes:
            self.classes[name] = ClassReport(name, labelled)
        return self.classes[name]

    @property
    def labelled_classes(self) -> list[str]:
        return sorted(n for n, c in self.classes.items() if c.labelled)

    @property
    def unlabelled_classes(self) -> list[str]:
        return sorted(n for n, c in self.classes.items() if not c.labelled)

    def totals(self) -> dict[str, int]:
        keys = ("images", "pairs", "objects", "empty_masks", "problems")
        return {k: sum(getattr(c, k) for c in self.classes.values()) for k in keys}

    def to_dict(self) -> dict:
        return {
            "root": str(self.root), "layout": self.layout, "min_area": self.min_area, "ok": self.ok,
            "classes": {n: self.classes[n].to_dict() for n in sorted(self.classes)},
            "unlabelled_classes": self.unlabelled_classes, "totals": self.totals(),
            "errors": list(self.errors), "warnings": list(self.warnings),
        }

    def format_table(self) -> str:
        """Fixed-width table, one row per class plus a total row."""
        header = ("class", "images", "pairs", "objects", "sizes (HxW)", "empty", "problems")
        rows = []
        for name in sorted(self.classes):
            c = self.classes[name]
            labelled = c.labelled
            rows.append((name if labelled else f"{name} (unlabelled)", str(c.images),
                         str(c.pairs) if labelled else "-", str(c.objects) if labelled else "-",
                         c.size_range(), str(c.empty_masks) if labelled else "-", str(c.problems)))
        t = self.totals()
        rows.append(("TOTAL", str(t["images"]), str(t["pairs"]), str(t["objects"]), "",
                     str(t["empty_masks"]), str(t["problems"])))
        widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
        fmt = lambda r: "  ".join(v.ljust(widths[i]) if i in (0, 4) else v.rjust(widths[i]) for i, v in enumerate(r))
        rule = "  ".join("-" * w for w in widths)
        return "\n".join([fmt(header), rule] + [fmt(r) for r in rows[:-1]] + [rule, fmt(rows[-1])])


class _Checker:
    """Walks one dataset path and fills a report; every file-level failure becomes an error line."""

    def __init__(self, report: DatasetReport, mask_mode: str, on_image: Callable[[], None] | None = None) -> None:
        self.report = report
        self.mask_mode = mask_mode
        self.on_image = on_image or (lambda: None)  # progress: called once per image read

    def attempt(self, fn: Callable, path: Path, counter: ClassReport | None = None, attr: str = "unreadable"):
        try:
            return fn(path)
        except DataError as exc:
            self.report.errors.append(str(exc))
            if counter is not None:
                setattr(counter, attr, getattr(counter, attr) + 1)
            return None

    def _by_stem(self, paths: list[Path], what: str) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for p in paths:
            if p.stem in out:
                self.report.errors.append(f"{p}: same stem as {out[p.stem]} ({what} stems must be unique)")
                continue
            out[p.stem] = p
        return out

    def pairs(self, folder: Path, cls: str) -> None:
        cr = self.report.class_report(cls, labelled=True)
        images = self._by_stem(list_images(folder / "images", root=folder), "image")
        masks = self._by_stem(list_images(folder / "masks", root=folder), "mask")
        cr.images += len(images)
        for stem, image_path in images.items():
            self._pair(cr, image_path, masks.get(stem), folder)
        for stem in sorted(set(masks) - set(images)):
            cr.masks_without_images += 1
            self.report.warnings.append(f"{masks[stem]}: mask without an image (no {stem}.* in {folder / 'images'})")

    def _pair(self, cr: ClassReport, image_path: Path, mask_path: Path | None, folder: Path) -> None:
        image = self.attempt(read_image, image_path, cr)
        self.on_image()
        if image is not None:
            cr.add_size(image.shape[:2])
        if mask_path is None:
            cr.images_without_masks += 1
            self.report.errors.append(f"{image_path}: no mask with the same stem in {folder / 'masks'}")
            return
        cr.pairs += 1
        mask = self.attempt(read_mask, mask_path, cr)
        if image is None or mask is None:
            return
        if mask.shape != image.shape[:2]:
            cr.size_mismatches += 1
            self.report.errors.append(
                f"size mismatch: image {image_path} is {image.shape[0]}x{image.shape[1]} (HxW) but mask "
                f"{mask_path} is {mask.shape[0]}x{mask.shape[1]}")
            return
        self._count_objects(cr, count_objects(mask, self.mask_mode, self.report.min_area), mask_path)

    def _count_objects(self, cr: ClassReport, k: int, where: Path) -> None:
        cr.objects += k
        if k == 0:
            cr.empty_masks += 1
            self.report.warnings.append(f"{where}: no object of >= {self.report.min_area} px (empty mask)")

    def unlabelled(self, folder: Path, cls: str) -> None:
        cr = self.report.class_report(cls, labelled=False)
        images = self._by_stem(list_images(folder / "images", root=folder), "image")
        cr.images += len(images)
        for image_path in images.values():
            image = self.attempt(read_image, image_path, cr)
            self.on_image()
            if image is not None:
                cr.add_size(image.shape[:2])

    def coco(self, json_path: Path) -> None:
        try:
            records, _ = load_coco_records(json_path)
        except DataError as exc:
            self.report.errors.append(str(exc))
            return
        for rec in records:
            cr = self.report.class_report(rec.class_name, labelled=True)
            cr.images += 1
            cr.pairs += 1
            image = self.attempt(read_image, rec.image_path, cr)
            self.on_image()
            if image is None:
                continue
            cr.add_size(image.shape[:2])
            decode = lambda p: annotations_to_masks(rec.coco_anns, image.shape[:2], p)
            masks = self.attempt(decode, rec.image_path, cr, "bad_labels")
            if masks is not None:
                self._count_objects(cr, len(filter_min_area(masks, self.report.min_area)), rec.image_path)

    def leaf(self, path: Path, layout: str, cls: str) -> None:
        if layout == "pairs":
            self.pairs(path, cls)
        elif layout == "unlabelled":
            self.unlabelled(path, cls)
        elif layout == "coco":
            self.coco(path if path.is_file() else find_coco_json(path))

    def run(self, path: Path) -> None:
        if not path.exists():
            self.report.errors.append(f"{path}: dataset path does not exist")
            return
        try:  # layout detection parses JSON files: a corrupt annotation file is an error, not "unlabelled"
            layout = detect_layout(path)
        except DataError as exc:
            self.report.errors.append(str(exc))
            return
        self.report.layout = layout
        if layout == "per_class":
            for sub in class_folders(path):
                self.leaf(sub, _leaf_layout(sub), sub.name)
        elif layout == "unknown":
            self.report.errors.append(f"{path}: not a dataset; {LAYOUT_HELP}")
        else:
            self.leaf(path, layout, path.name)


def check_dataset(path: str | os.PathLike, min_area: int = DEFAULT_MIN_AREA, mask_mode: str = "auto",
                  on_image: Callable[[], None] | None = None) -> DatasetReport:
    """Read every image and mask under ``path`` and report per class; never raises on bad data.

    Errors (``report.ok`` is False): unreadable/truncated files, images without masks in a labelled
    folder, image/mask size mismatches, undecodable COCO annotations, layout problems, no image at
    all. Warnings: masks without images, masks with no object of at least ``min_area`` pixels, a
    class folder without images. ``on_image`` is called after each image (a progress bar).
    """
    path = Path(path)
    report = DatasetReport(root=path, min_area=int(min_area))
    try:
        _Checker(report, mask_mode, on_image).run(path)
    except Exception as exc:  # noqa: BLE001 - a checker reports, it does not crash
        report.errors.append(f"{path}: check stopped: {type(exc).__name__}: {exc}")
    _check_not_empty(report)
    return report


def _check_not_empty(report: DatasetReport) -> None:
    """A dataset without images is an error (its folders are probably not the ones meant)."""
    for name in sorted(report.classes):
        if report.classes[name].images == 0 and len(report.classes) > 1:
            report.warnings.append(f"{report.root / name}: class folder without images")
    if report.ok and report.totals()["images"] == 0:
        kinds = ", ".join(IMAGE_EXTENSIONS)
        report.errors.append(f"{report.root}: empty dataset: no image files found ({report.layout} layout; "
                             f"expected {kinds} files in its images/ folder(s) or COCO JSON)")


def require_valid_dataset(path: str | os.PathLike, min_area: int = DEFAULT_MIN_AREA, labelled: bool = True,
                          on_image: Callable[[], None] | None = None) -> DatasetReport:
    """:func:`check_dataset`, raising :class:`DataError` unless the dataset can be used as it is.

    What the verbs that read a dataset (finetune, eval, bench, prune) run before any other work, so
    a bad file stops them at once with the line `edgesam data check` would print for it. With
    ``labelled``, at least one image must have a mask.
    """
    report = check_dataset(path, min_area=min_area, on_image=on_image)
    if not report.ok:
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise DataError(f"{report.errors[0]}{more}; `edgesam data check {path}` lists every problem")
    if labelled and report.totals()["pairs"] == 0:
        raise DataError(f"{path}: no labelled image (an image with its mask, or COCO annotations); "
                        f"this needs ground truth; {LAYOUT_HELP}")
    return report
