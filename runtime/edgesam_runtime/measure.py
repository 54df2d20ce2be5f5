"""Measurements of a defect mask, in pixels and (calibrated) millimetres: what line rules are written in.

    cal = Calibration(0.02)                       # mm per pixel; Calibration((0.02, 0.025)) per axis (x, y)
    m = measure_mask(mask, cal, predicted_iou=0.93, stability=0.97)
    m.length_mm, m.max_width_mm, m.area_mm2, m.to_dict()

Definitions (all computed by OpenCV: distance transform, Guo-Hall thinning, contours, moments):

- area: mask pixels (x the pixel's area in mm^2);
- length: along the mask's skeleton, the path length of its branches (the skeleton's contour, simplified
  within one pixel so that a straight staircase of pixels measures as the straight line it is, halved:
  a contour runs along both sides of a one-pixel line) plus, at each free end, the distance from the end
  pixel's centre to the boundary, so a bar L pixels long measures L whatever its width (a caliper's figure);
- width: twice the distance from a skeleton pixel to the nearest background pixel, less one pixel (a one-pixel
  line is 1 px wide): the maximum (the mask's widest point), and the mean along the skeleton. A blob more than
  16 px half-wide is thinned on a copy reduced to ~8 px half-width (thinning's cost grows with the width;
  the distances stay at full resolution);
- bbox: inclusive pixel corners (x0, y0, x1, y1), and its width and height in mm;
- orientation: of the major axis (second moments), degrees from the image x axis towards +y (clockwise on
  the screen), in (-90, 90];
- components: 8-connected pieces of the mask.

With a per-axis calibration (pixels not square), the length and widths in mm are measured on the mask
resampled to square pixels of the smaller side; the pixel figures are always on the original grid.

Quality: `predicted_iou` is the decoder's own IoU estimate; `stability_score` is SAM's agreement of the
mask at two logit thresholds (IoU of logit > +offset and logit > -offset), taken on the decoder's low-res
logits, where the mask is decided. Torch-free (numpy + OpenCV); never raises for a valid boolean mask.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edgesam_runtime.errors import InvalidInputError

THIN_HALF_WIDTH_PX = 8  # thinning runs on a reduced copy of blobs more than twice this half-wide
STABILITY_OFFSET = 1.0  # SAM's automatic mask generator uses the same offset around the 0 threshold
_NEIGHBOURS = np.ones((3, 3), np.float32)


@dataclass(frozen=True)
class Calibration:
    """Millimetres per pixel along x and y: `Calibration(0.02)` (square pixels) or `Calibration(0.02, 0.025)`."""

    mm_per_px_x: float
    mm_per_px_y: float | None = None  # None: the same as x

    def __post_init__(self):
        if self.mm_per_px_y is None:
            object.__setattr__(self, "mm_per_px_y", self.mm_per_px_x)
        for axis in ("x", "y"):
            value = getattr(self, f"mm_per_px_{axis}")
            if not _positive_number(value):
                raise InvalidInputError(f"mm_per_px ({axis}): expected a positive number of mm per pixel, got {value!r}")
        object.__setattr__(self, "mm_per_px_x", float(self.mm_per_px_x))
        object.__setattr__(self, "mm_per_px_y", float(self.mm_per_px_y))

    @classmethod
    def parse(cls, value, where: str = "mm_per_px") -> "Calibration":
        """A positive number, or a pair [x, y] of them; `InvalidInputError` names `where` otherwise."""
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if len(values) not in (1, 2) or not all(_positive_number(v) for v in values):
            raise InvalidInputError(f"{where}: expected a positive number of mm per pixel, or [x, y] of them, "
                                    f"got {value!r}")
        return cls(values[0], values[-1])

    @property
    def isotropic(self) -> bool:
        return math.isclose(self.mm_per_px_x, self.mm_per_px_y, rel_tol=1e-9)

    @property
    def square_side_mm(self) -> float:
        """The side of the square pixel length and width in mm are measured on."""
        return min(self.mm_per_px_x, self.mm_per_px_y)

    def to_list(self) -> list[float]:
        return [self.mm_per_px_x, self.mm_per_px_y]


def is_finite_number(value) -> bool:
    """A real number from a parsed file (int or float, not a bool, not NaN or infinite)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive_number(value) -> bool:
    return is_finite_number(value) and value > 0


@dataclass(frozen=True)
class ShapeFigures:
    """Length and widths of a mask on one pixel grid."""

    length: float
    max_width: float
    mean_width: float


@dataclass(frozen=True)
class Measurement:
    area_px: int
    length_px: float
    max_width_px: float
    mean_width_px: float
    bbox: tuple[int, int, int, int] | None  # x0, y0, x1, y1 inclusive; None for an empty mask
    orientation_deg: float | None  # None for an empty mask
    components: int
    area_mm2: float | None = None  # the mm figures are None without a calibration
    length_mm: float | None = None
    max_width_mm: float | None = None
    mean_width_mm: float | None = None
    bbox_width_mm: float | None = None
    bbox_height_mm: float | None = None
    predicted_iou: float | None = None
    stability: float | None = None

    @property
    def empty(self) -> bool:
        return self.area_px == 0

    def value(self, name: str) -> float | None:
        """A figure by the name rules use (`length_mm`, `area_px`, ...)."""
        return getattr(self, name)

    def to_dict(self) -> dict:
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(self).items()}
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}


def measure_mask(mask: np.ndarray, calibration: Calibration | None = None, predicted_iou: float | None = None,
                 stability: float | None = None) -> Measurement:
    """Every figure of one (H, W) mask (bool or 0/1); an empty mask measures zero with no bbox."""
    binary = _as_binary(mask)
    quality = {"predicted_iou": _optional_float(predicted_iou), "stability": _optional_float(stability)}
    x, y, w, h = cv2.boundingRect(binary)
    if w == 0 or h == 0:
        return Measurement(0, 0.0, 0.0, 0.0, None, None, 0, **_mm_zero(calibration), **quality)
    crop = np.pad(binary[y:y + h, x:x + w], 1)  # a background ring: a defect cut by the frame edge ends there
    area = int(np.count_nonzero(crop))
    shape = shape_figures(crop)
    components = cv2.connectedComponents(crop, connectivity=8)[0] - 1
    moments = cv2.moments(crop, binaryImage=True)
    figures = dict(area_px=area, length_px=shape.length, max_width_px=shape.max_width,
                   mean_width_px=shape.mean_width, bbox=(x, y, x + w - 1, y + h - 1),
                   orientation_deg=_orientation(moments, calibration), components=int(components))
    if calibration is not None:
        figures.update(_mm_figures(crop, area, (w, h), shape, calibration))
    return Measurement(**figures, **quality)


def shape_figures(binary: np.ndarray) -> ShapeFigures:
    """Length along the skeleton and widths from the distance transform, in pixels of `binary`'s grid.

    `binary` is uint8 0/255 with a background border (the distance transform needs a boundary). Thinning
    peels a blob one pixel layer per pass, so a wide blob (half-width over 2 x THIN_HALF_WIDTH_PX) is thinned
    on a copy reduced by a whole factor that leaves it about THIN_HALF_WIDTH_PX wide; the distances stay at
    full resolution (each skeleton cell reads the largest distance in the pixels it stands for)."""
    distance = cv2.distanceTransform(binary, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    peak = float(distance.max())  # the widest point lies on the medial axis, wherever thinning puts it
    factor = int(peak // THIN_HALF_WIDTH_PX)
    if factor >= 2:
        binary, distance = _reduced(binary, distance, factor)
    skeleton = cv2.ximgproc.thinning(binary, thinningType=cv2.ximgproc.THINNING_GUOHALL)
    on_skeleton = skeleton > 0
    if not on_skeleton.any():  # thinning never empties a non-empty blob; guard anyway
        on_skeleton = distance == distance.max()
    if factor >= 2 and np.count_nonzero(on_skeleton) == 1:  # a round blob: its centre may lie in a neighbour cell
        distance = cv2.dilate(distance, _NEIGHBOURS)
    widths = 2.0 * distance[on_skeleton] - 1.0
    length = _skeleton_path_length(skeleton) * max(factor, 1) + _end_extensions(on_skeleton, distance)
    return ShapeFigures(length, 2.0 * peak - 1.0, float(widths.mean()))


def _reduced(binary: np.ndarray, distance: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The mask reduced `factor` times (a cell is foreground when most of its pixels are), and per cell the
    largest full-resolution distance among its pixels (the ridge crosses the cell)."""
    h, w = binary.shape
    rows, cols = -(-h // factor), -(-w // factor)
    padded = np.zeros((rows * factor, cols * factor), np.float32)
    padded[:h, :w] = distance
    cells = np.pad(padded.reshape(rows, factor, cols, factor).max(axis=(1, 3)), 1)
    small = cv2.resize(binary, (cols, rows), interpolation=cv2.INTER_AREA)
    small = np.pad(np.where(small >= 128, np.uint8(255), np.uint8(0)), 1)
    return small, cells


def _skeleton_path_length(skeleton: np.ndarray) -> float:
    """Path length of a one-pixel skeleton: its contours (each branch traced along both sides), simplified
    within one pixel so pixel staircases count as straight segments, halved."""
    contours, _ = cv2.findContours(skeleton, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    traced = sum(cv2.arcLength(cv2.approxPolyDP(c, 1.0, True), True) for c in contours)
    return float(traced) / 2.0


def _end_extensions(on_skeleton: np.ndarray, distance: np.ndarray) -> float:
    """From each free end's pixel centre to the boundary: the distance there less half a pixel.

    A free end has one skeleton neighbour; a lone skeleton pixel (a round blob) is two ends at once. On a
    reduced grid the distance is the ridge's within the end cell, whose centre is within half a cell of it."""
    neighbours = cv2.filter2D(on_skeleton.astype(np.float32), -1, _NEIGHBOURS, borderType=cv2.BORDER_CONSTANT) - 1.0
    ends = on_skeleton & (neighbours <= 1.5)
    weight = np.where(neighbours[ends] < 0.5, 2.0, 1.0)  # lone pixel: both ends
    return float(np.sum(weight * np.maximum(distance[ends] - 0.5, 0.0)))


def _orientation(moments: dict, calibration: Calibration | None) -> float:
    """Major-axis angle in degrees (-90, 90], in the physical frame when calibrated (pixels may not be square)."""
    sx, sy = (calibration.mm_per_px_x, calibration.mm_per_px_y) if calibration else (1.0, 1.0)
    mu20, mu02, mu11 = moments["mu20"] * sx * sx, moments["mu02"] * sy * sy, moments["mu11"] * sx * sy
    angle = 0.5 * math.degrees(math.atan2(2.0 * mu11, mu20 - mu02))
    return 90.0 if angle <= -90.0 else angle


def _mm_figures(crop: np.ndarray, area: int, size_wh: tuple[int, int], shape: ShapeFigures,
                calibration: Calibration) -> dict:
    sx, sy = calibration.mm_per_px_x, calibration.mm_per_px_y
    side = calibration.square_side_mm
    if calibration.isotropic:
        square = shape
    else:  # resample to square pixels of the smaller side, so distances in every direction are right
        inner = crop[1:-1, 1:-1]
        size = (max(1, round(inner.shape[1] * sx / side)), max(1, round(inner.shape[0] * sy / side)))  # (w, h)
        square = shape_figures(np.pad(cv2.resize(inner, size, interpolation=cv2.INTER_NEAREST), 1))
    return {"area_mm2": area * sx * sy, "length_mm": square.length * side, "max_width_mm": square.max_width * side,
            "mean_width_mm": square.mean_width * side, "bbox_width_mm": size_wh[0] * sx,
            "bbox_height_mm": size_wh[1] * sy}


def _mm_zero(calibration: Calibration | None) -> dict:
    if calibration is None:
        return {}
    return dict(area_mm2=0.0, length_mm=0.0, max_width_mm=0.0, mean_width_mm=0.0, bbox_width_mm=0.0,
                bbox_height_mm=0.0)


def _as_binary(mask) -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        shape = getattr(mask, "shape", None)
        raise InvalidInputError(f"mask: expected an (H, W) numpy array, got {type(mask).__name__} of shape {shape}")
    if mask.dtype != bool and not np.issubdtype(mask.dtype, np.integer):
        raise InvalidInputError(f"mask: expected a bool or integer (0/1) array, got dtype {mask.dtype}")
    return np.where(mask != 0, np.uint8(255), np.uint8(0))


def _optional_float(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def stability_scores(low_res_logits: np.ndarray, offset: float = STABILITY_OFFSET) -> np.ndarray:
    """(B,) SAM's stability score of each prompt's first mask in (B, M, h, w) logits: IoU of the mask at
    logit > +offset with the mask at logit > -offset; NaN where both are empty (nothing to be stable)."""
    logits = np.asarray(low_res_logits, np.float32)
    if logits.ndim != 4:
        raise InvalidInputError(f"low_res_logits: expected (B, M, h, w), got shape {logits.shape}")
    flat = logits[:, 0].reshape(len(logits), -1)
    inner = (flat > offset).sum(axis=1)
    outer = (flat > -offset).sum(axis=1)
    return np.where(outer > 0, inner / np.maximum(outer, 1), np.nan)
