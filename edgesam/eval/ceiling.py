"""The IoU ceiling of a mask grid: what even a perfect model can score when it draws masks on that grid.

SAM draws masks on a grid a quarter of its input side (32x32 for a 128 px ROI crop) and upscales
them. Taking each ground-truth mask to that grid (the share of each cell it covers, exactly the
target training uses) and back (the same upscaling every prediction goes through, thresholded at
half coverage) gives the best mask the grid can express; its IoU with the ground truth bounds every
model that draws on it. Thin defects lose most: a crack one pixel wide in a crop drawn at 32x32
covers a fraction of each cell it crosses.

`finetune` checks this before training (and adds a refiner, which draws on a finer grid, where a
class falls below `CEILING_FLOOR`); `edgesam data check` prints it for the framings a user can
choose. Numpy only: the masks never meet a model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgesam_runtime import geometry, roi
from edgesam.data.prompt_sampling import tight_box

CEILING_FLOOR = 0.85  # below this, the grid rather than training decides a class's accuracy
MAX_OBJECTS_PER_CLASS = 100  # ceilings are means: a sample of this many objects per class is plenty


@dataclass(frozen=True)
class Grid:
    """A way of drawing masks: the input framing, the input size and the side of the mask grid."""

    framing: roi.InputFraming
    image_size: int
    grid: int

    @property
    def refined(self) -> bool:
        return self.grid != self.image_size // 4

    def describe(self) -> str:
        where = f"ROI {self.framing.roi_margin:g}x" if self.framing.roi else "whole image"
        how = "refiner" if self.refined else "decoder"
        return f"{where} @{self.image_size} px, {how} {self.grid}x{self.grid}"


def object_ceiling(mask: np.ndarray, grid: Grid) -> float:
    """IoU with `mask` (H, W bool, non-empty) of the best mask `grid` can draw for it (tight box)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("object_ceiling: the mask is empty; a ceiling needs an object")
    if grid.framing.roi:
        window = roi.crop_windows(tight_box(mask)[None], grid.framing.roi_margin, grid.framing.roi_min_side)
        crop = roi.crop_mask(mask, window[0])[None]
        logits = geometry.grid_targets(crop, grid.image_size, grid.grid)[:, :1] - 0.5
        drawn = roi.paste_masks(logits, window, mask.shape, grid.image_size)[0, 0]
    else:
        logits = geometry.grid_targets(mask[None], grid.image_size, grid.grid) - 0.5
        drawn = geometry.upscale_masks(logits, mask.shape, grid.image_size)[0, 0]
    return float((drawn & mask).sum() / (drawn | mask).sum())


def class_ceilings(dataset, grids: list[Grid], max_objects: int = MAX_OBJECTS_PER_CLASS,
                   on_image=None) -> dict[str, dict[Grid, float]]:
    """Mean ceiling per class (labelled images of `dataset`) for each grid, over up to `max_objects`
    objects per class (its first images in dataset order, so the figure is reproducible)."""
    per_class: dict[str, dict[Grid, list[float]]] = {}
    counts: dict[str, int] = {}
    for i, record in enumerate(dataset.records):
        if not record.labelled or counts.get(record.class_name, 0) >= max_objects:
            continue
        sample = dataset.load(i)
        for mask in sample.masks[: max_objects - counts.get(sample.class_name, 0)]:
            counts[sample.class_name] = counts.get(sample.class_name, 0) + 1
            scores = per_class.setdefault(sample.class_name, {g: [] for g in grids})
            for g in grids:
                scores[g].append(object_ceiling(mask, g))
        if on_image is not None:
            on_image()
    return {c: {g: float(np.mean(v)) for g, v in scores.items()} for c, scores in sorted(per_class.items())}


def below_floor(ceilings: dict[str, dict[Grid, float]], grid: Grid, floor: float = CEILING_FLOOR) -> dict[str, float]:
    """Classes whose ceiling on `grid` is below `floor`: {class: ceiling}."""
    return {c: v[grid] for c, v in ceilings.items() if v[grid] < floor}


def candidate_grids(framing: roi.InputFraming | None = None) -> list[Grid]:
    """The framings `data check` compares, cheapest first: ROI crops at 128 and 256 px with the
    decoder's grid and with a refiner's full-resolution grid, then SAM's whole image at 1024 px."""
    crop = framing if framing is not None and framing.roi else roi.InputFraming(mode="roi", roi_margin=1.5,
                                                                                  dense_box=True)
    out = []
    for size in (128, 256):
        out += [Grid(crop, size, size // 4), Grid(crop, size, size)]
    return out + [Grid(roi.WHOLE_IMAGE, 1024, 256)]


def recommend(ceilings: dict[str, dict[Grid, float]], grids: list[Grid], floor: float = CEILING_FLOOR) -> Grid | None:
    """The cheapest grid (first in `grids`) on which every class reaches `floor`, or None."""
    for g in grids:
        if all(v[g] >= floor for v in ceilings.values()):
            return g
    return None


def format_table(ceilings: dict[str, dict[Grid, float]], grids: list[Grid]) -> str:
    """One row per grid, one column per class: the mean IoU ceiling."""
    classes = list(ceilings)
    header = ["mask grid (tight boxes)"] + classes
    rows = [[g.describe()] + [f"{ceilings[c][g]:.3f}" for c in classes] for g in grids]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    fmt = lambda r: "  ".join(v.ljust(widths[0]) if i == 0 else v.rjust(widths[i]) for i, v in enumerate(r))  # noqa: E731
    return "\n".join([fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])
