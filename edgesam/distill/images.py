"""The line's images for distillation: every image of a folder, labelled or not, split like finetune splits.

Distillation needs pixels only, so defect-free class folders (``free/``) and flat folders of line
frames count as much as labelled images; labels, where a folder has them, serve the evaluation.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesam.data import DataError, Dataset, ImageRecord, list_images, load_dataset, read_image, split_by_stem
from edgesam.data.check import require_valid_dataset
from edgesam.data.datasets import class_folders, detect_layout, unlabelled_records


def line_images(path: str | Path, check: bool = False, on_image=None) -> Dataset:
    """All images under `path`: any dataset layout, unlabelled class folders included, or a flat image folder.

    `check` reads every file once first (a dataset: `edgesam data check`'s checks, masks included,
    since the held-out labels feed the report), so a bad file stops the run before any model is built,
    with one line naming it. `on_image` is called after each file read (a progress bar).
    """
    path = Path(path)
    if not path.is_dir() and not path.is_file():
        raise DataError(f"{path}: image folder not found")
    if path.is_dir() and detect_layout(path) == "unknown":
        flat = list_images(path)
        if not flat:
            raise DataError(f"{path}: no images found (expected image files, or a dataset folder)")
        for image in flat if check else ():
            read_image(image)  # raises DataError naming the file
            if on_image is not None:
                on_image()
        return Dataset(path, [ImageRecord(p.stem, path.name, p) for p in flat], labelled=False, layout="flat")
    if check:
        require_valid_dataset(path, labelled=False, on_image=on_image)
    data = load_dataset(path)
    extra: list[ImageRecord] = []
    if data.layout == "per_class" and data.labelled:  # unlabelled class folders are not in the records
        wanted = set(data.unlabelled_classes)
        for folder in class_folders(path):
            if folder.name in wanted:
                extra += unlabelled_records(folder, folder.name)
    if not data.records and not extra:
        raise DataError(f"{path}: no images found")
    records = list(data.records) + extra
    return Dataset(data.root, records, sorted({r.class_name for r in records}), min_area=data.min_area,
                   mask_mode=data.mask_mode, labelled=all(r.labelled for r in records), layout=data.layout)


def split_images(data: Dataset, val_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """(train, held-out) by `split_by_stem`: a labelled image lands where `edgesam finetune` puts it.

    Membership depends only on the record's class/stem and the seed, so with finetune's fraction and
    split seed the held-out labelled images are exactly finetune's validation images (`edgesam eval
    --split val`), and the student's task figure is measured on images neither model trained on.
    Images without labels are split the same way: their held-out part measures agreement only.
    """
    if len(data) < 2:
        raise DataError(f"{data.root}: found {len(data)} image(s); distillation needs at least 2 (train + held-out)")
    return split_by_stem(data, val_fraction, seed)


def evenly(data: Dataset, limit: int | None) -> Dataset:
    """At most `limit` records, spread evenly over the (class-ordered) list so every class keeps some."""
    if limit is None or limit >= len(data):
        return data
    picks = sorted(set(np.linspace(0, len(data) - 1, limit).round().astype(int).tolist()))
    return data.subset(picks)


def labelled_part(data: Dataset) -> Dataset:
    return data.subset([i for i, r in enumerate(data.records) if r.labelled])
