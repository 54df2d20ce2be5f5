"""How a model frames its input, and the geometry of ROI framing (numpy + Pillow, no torch).

A model sees either the whole image (SAM's own way: resize the longest side to the input size) or,
in ROI framing, one square crop per box: a window `roi_margin` times the box's longest side,
centred on the box, resized to the input size. Small defects on large frames keep their pixels that
way (a 10 px blowhole in a 600 px frame is 2 px at 128 px whole-image, 64 px in its crop), and a
model trained from scratch always finds its object in the same place, at the same scale.

With `dense_box`, the box is also given to the decoder as its dense mask prompt: a low-resolution
map of how much of each cell the box covers. From random init, SAM's two box-corner tokens alone
do not carry the box to the mask (the decoder settles on a constant negative logit); the dense map
does.

The framing is a property of a trained model, recorded with its checkpoint (`ArchConfig.extra`)
and in a bundle's manifest (`model.framing`), so the reference predictor, evaluation, export and
the runtime apply it without being told. This module is the single source of that geometry: the
training samples, the PyTorch predictor and the torch-free runtime all call it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from edgesam_runtime import geometry
from edgesam_runtime.fields import checked_fields

MODES = ("image", "roi")
# Dense box prompt values: +/- this where the box covers a cell fully / not at all (SAM's mask prompt
# takes logits; this keeps the map on the scale of the logits a pretrained model was fed).
DENSE_BOX_LOGIT = 4.0


@dataclass(frozen=True)
class InputFraming:
    """Whole-image or ROI framing of a model's input; see the module docstring."""

    mode: str = "image"  # image | roi
    roi_margin: float = 2.0  # roi: crop side = margin x the box's longest side
    roi_min_side: int = 16  # roi: smallest crop side in frame pixels (a 3 px box still gets context)
    dense_box: bool = False  # the box also goes to the decoder as a dense mask prompt

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"framing.mode: expected one of {list(MODES)}, got {self.mode!r}")
        margin_ok = isinstance(self.roi_margin, (int, float)) and not isinstance(self.roi_margin, bool)
        if not margin_ok or not 1.0 <= self.roi_margin <= 16.0:
            raise ValueError(f"framing.roi_margin: expected a number in [1, 16], got {self.roi_margin!r}")
        if not isinstance(self.roi_min_side, int) or isinstance(self.roi_min_side, bool) or self.roi_min_side < 1:
            raise ValueError(f"framing.roi_min_side: expected an integer >= 1, got {self.roi_min_side!r}")
        if not isinstance(self.dense_box, bool):
            raise ValueError(f"framing.dense_box: expected true or false, got {self.dense_box!r}")

    @property
    def roi(self) -> bool:
        return self.mode == "roi"

    @property
    def is_default(self) -> bool:
        return self == WHOLE_IMAGE

    def describe(self) -> str:
        text = "whole image" if not self.roi else f"ROI crops ({self.roi_margin:g}x the box side)"
        return text + (" + dense box prompt" if self.dense_box else "")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "framing") -> "InputFraming":
        if d is None:
            return WHOLE_IMAGE
        return cls(**checked_fields(cls, d, where))


WHOLE_IMAGE = InputFraming()

REFINE_STRIDES = (1, 2)  # a refiner's grid: the input side, or half of it (the decoder's own is a quarter)


@dataclass(frozen=True)
class RefineSpec:
    """A mask refiner (`edgesam.models.refiner`): its output stride and its channel width.

    Recorded like the framing (`ArchConfig.extra["refine"]`, the manifest's `model.refine`): a model
    that has one draws its masks on an `image_size / stride` grid instead of the decoder's quarter.
    """

    stride: int = 1
    width: int = 48

    def __post_init__(self):
        if self.stride not in REFINE_STRIDES:
            raise ValueError(f"refine.stride: expected one of {list(REFINE_STRIDES)}, got {self.stride!r}")
        if not isinstance(self.width, int) or isinstance(self.width, bool) or not 8 <= self.width <= 256:
            raise ValueError(f"refine.width: expected an integer in [8, 256], got {self.width!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "refine") -> "RefineSpec":
        return cls(**checked_fields(cls, d, where))


def refine_spec_of(arch) -> RefineSpec | None:
    """The refiner an `ArchConfig` records, or None (masks on the decoder's grid)."""
    d = (arch.extra or {}).get("refine")
    return None if d is None else RefineSpec.from_dict(d, "arch.extra.refine")


def with_refiner(arch, spec: RefineSpec | None):
    """`arch` recording `spec` (None: no refiner, recorded by leaving it out)."""
    extra = {k: v for k, v in (arch.extra or {}).items() if k != "refine"}
    if spec is not None:
        extra["refine"] = spec.to_dict()
    return arch.replace(extra=extra)


def mask_grid(image_size: int, spec: RefineSpec | None) -> int:
    """Side of the grid a model draws its masks on: the decoder's (S/4) or its refiner's (S/stride)."""
    return image_size // (4 if spec is None else spec.stride)


def framing_of(arch) -> InputFraming:
    """The framing an `ArchConfig` records (in `extra["framing"]`); whole image when it records none."""
    return InputFraming.from_dict((arch.extra or {}).get("framing"), "arch.extra.framing")


def with_framing(arch, framing: InputFraming):
    """`arch` recording `framing` (the default whole-image framing is recorded by leaving it out)."""
    extra = {k: v for k, v in (arch.extra or {}).items() if k != "framing"}
    if not framing.is_default:
        extra["framing"] = framing.to_dict()
    return arch.replace(extra=extra)


# ------------------------------------------------------------------------------------ crop windows
def crop_windows(boxes: np.ndarray, margin: float, min_side: int) -> np.ndarray:
    """(B, 4) inclusive x0, y0, x1, y1 boxes -> (B, 3) int64 windows (x0, y0, side).

    Each window is a square of side max(min_side, ceil(margin x longest box side)) centred on the
    box; it may reach past the frame (crop_input fills that part). Pixel i covers [i, i + 1), so an
    inclusive box spans [x0, x1 + 1).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    extent = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) + 1.0
    side = np.maximum(np.ceil(margin * extent - 1e-9), min_side).astype(np.int64)
    cx = (boxes[:, 0] + boxes[:, 2] + 1.0) / 2.0
    cy = (boxes[:, 1] + boxes[:, 3] + 1.0) / 2.0
    x0 = np.floor(cx - side / 2.0 + 0.5).astype(np.int64)
    y0 = np.floor(cy - side / 2.0 + 0.5).astype(np.int64)
    return np.stack([x0, y0, side], axis=1)


def cut(array: np.ndarray, window, fill) -> np.ndarray:
    """The window's square of `array` (H, W[, C]); the part outside the frame is `fill`."""
    x0, y0, side = (int(v) for v in window)
    return cut_rect(array, x0, y0, side, side, fill)


def cut_rect(array: np.ndarray, x0: int, y0: int, width: int, height: int, fill) -> np.ndarray:
    """The (height, width[, C]) rectangle of `array` at (x0, y0); the part outside the frame is `fill`.

    Only the strips outside the frame are filled (a window of a large defect is mostly outside a
    narrow frame: filling all of it first cost 4x the copy)."""
    h, w = array.shape[:2]
    out = np.empty((height, width) + array.shape[2:], dtype=array.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + width, w), min(y0 + height, h)
    if sx1 <= sx0 or sy1 <= sy0:
        out[...] = fill
        return out
    top, bottom, left, right = sy0 - y0, sy1 - y0, sx0 - x0, sx1 - x0
    out[:top] = fill
    out[bottom:] = fill
    out[top:bottom, :left] = fill
    out[top:bottom, right:] = fill
    out[top:bottom, left:right] = array[sy0:sy1, sx0:sx1]
    return out


def crop_input(rgb: np.ndarray, window, image_size: int, mean=geometry.PIXEL_MEAN,
               std=geometry.PIXEL_STD) -> np.ndarray:
    """The encoder input (1, 3, S, S) float32 of one window of an HxWx3 uint8 frame.

    Outside the frame the crop holds the pixel mean (0 after normalisation, like SAM's padding).
    The square crop is resized with the same filter as whole-image preprocessing.
    """
    return crop_inputs(rgb, np.asarray(window, dtype=np.int64).reshape(1, 3), image_size, mean, std)


def crop_inputs(rgb: np.ndarray, windows: np.ndarray, image_size: int, mean=geometry.PIXEL_MEAN,
                std=geometry.PIXEL_STD) -> np.ndarray:
    """(B, 3, S, S) float32 encoder inputs of B windows of an HxWx3 uint8 frame: each window cut (only
    its own pixels are copied, never the frame) and resized with PIL's bilinear filter into one uint8
    batch, then normalised in one step (`geometry.normalize_into`): what `crop_input` gives per window."""
    fill = np.clip(np.rint(np.asarray(mean, dtype=np.float64)), 0, 255).astype(np.uint8)
    windows = np.asarray(windows, dtype=np.int64).reshape(-1, 3)
    resized = np.empty((len(windows), image_size, image_size, 3), dtype=np.uint8)
    h, w = rgb.shape[:2]
    for k, window in enumerate(windows):
        x0, y0, side = (int(v) for v in window)
        if x0 >= 0 and y0 >= 0 and x0 + side <= w and y0 + side <= h:  # inside the frame: a view, no copy
            crop = rgb[y0:y0 + side, x0:x0 + side]
            resized[k] = np.asarray(Image.fromarray(crop).resize((image_size, image_size), Image.BILINEAR))
        elif not _resize_reaching_past(resized[k], rgb, (x0, y0, side), fill):
            resized[k] = np.asarray(Image.fromarray(cut(rgb, window, fill)).resize((image_size, image_size),
                                                                                   Image.BILINEAR))
    out = np.empty((len(windows), 3, image_size, image_size), dtype=np.float32)
    geometry.normalize_into(out, resized, mean, std)
    return out


def _resize_reaching_past(out: np.ndarray, rgb: np.ndarray, window, fill) -> bool:
    """Fill `out` (S, S, 3) with the resize of a window reaching past the frame, reading only the part
    whose filter support touches the frame; False (nothing written) where that cannot be exact.

    A large defect's window is mostly outside a narrow frame (a 900 px square on a 240x600 frame: 4.7 ms
    to fill and resize it whole, 1.3 ms this way). Output rows and columns whose bilinear support lies
    wholly in the fill are the fill (the filter's weights sum to one); the rest is resized from a
    sub-rectangle holding their whole support, with PIL's `box` placing it where the full resize would.
    That is bit-identical when the box's corners are exact in float32 (PIL reads them so) and the scale
    is exact, which holds for power-of-two input sizes; the two passes are asked for one at a time
    (horizontal, then vertical, as PIL's full resize does them), since PIL may reorder them for a
    narrow input.
    """
    x0, y0, side = window
    size = out.shape[0]
    h, w = rgb.shape[:2]
    out[...] = fill
    if x0 >= w or y0 >= h or x0 + side <= 0 or y0 + side <= 0:
        return True
    scale = side / size
    (ox0, ox1, ix0, ix1), (oy0, oy1, iy0, iy1) = _support_span(x0, w, side, size), _support_span(y0, h, side, size)
    box = (ox0 * scale - ix0, oy0 * scale - iy0, ox1 * scale - ix0, oy1 * scale - iy0)
    if size & (size - 1) or any(float(np.float32(v)) != v for v in box):
        return False
    sub = cut_rect(rgb, x0 + ix0, y0 + iy0, ix1 - ix0, iy1 - iy0, fill)
    nx, ny, rows = ox1 - ox0, oy1 - oy0, sub.shape[0]
    horizontal = Image.fromarray(sub).resize((nx, rows), Image.BILINEAR, box=(box[0], 0, box[2], rows))
    out[oy0:oy1, ox0:ox1] = np.asarray(horizontal.resize((nx, ny), Image.BILINEAR, box=(0, box[1], nx, box[3])))
    return True


def _support_span(origin: int, extent: int, side: int, size: int) -> tuple[int, int, int, int]:
    """Along one axis of a window at `origin` (frame pixels, `side` long, resized to `size`) on a frame
    `extent` long: the outputs [o0, o1) whose bilinear support may touch the frame and the window
    pixels [i0, i1) those outputs read, each widened by a pixel or two (extra outputs compute the fill)."""
    scale = side / size
    support = max(scale, 1.0)  # PIL's bilinear support, widened by the scale when reducing
    f0, f1 = max(0, -origin), min(side, extent - origin)
    o0 = max(0, math.floor((f0 - support) / scale - 0.5) - 1)
    o1 = min(size, math.ceil((f1 + support) / scale - 0.5) + 2)
    i0 = max(0, math.floor((o0 + 0.5) * scale - support) - 2)
    i1 = min(side, math.ceil((o1 - 0.5) * scale + support) + 2)
    return o0, o1, i0, i1


def crop_mask(mask: np.ndarray, window) -> np.ndarray:
    """The window's square of a bool HxW mask (False outside the frame)."""
    return cut(np.asarray(mask, dtype=bool), window, False)


# ------------------------------------------------------------------------------------ prompts
def to_window_frame(xy: np.ndarray, window, image_size: int) -> np.ndarray:
    """(..., 2) frame x/y -> the crop's input frame (what the model sees after resizing the crop)."""
    xy = np.asarray(xy, dtype=np.float32)
    return to_window_frames(xy.reshape(1, -1, 2), np.asarray(window).reshape(1, 3), image_size).reshape(xy.shape)


def dense_box_prompt(boxes: np.ndarray, scale: np.ndarray, image_size: int) -> np.ndarray:
    """(B, 4) inclusive boxes in the model's input frame -> (B, 1, S/4, S/4) float32 dense prompts.

    `scale` (B, 2) is the input pixels per original pixel along x and y, so the box covers the
    continuous span [x0, x1 + 1) of original pixels. Each low-res cell gets +DENSE_BOX_LOGIT where
    the box covers it fully, -DENSE_BOX_LOGIT where not at all, and the covered fraction in between.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64).reshape(-1, 2), (len(boxes), 2))
    low = image_size // 4
    edges = np.arange(low, dtype=np.float64)[None, :] * 4.0
    cover_x = _coverage(edges, boxes[:, 0:1], boxes[:, 2:3] + scale[:, 0:1])  # (B, low)
    cover_y = _coverage(edges, boxes[:, 1:2], boxes[:, 3:4] + scale[:, 1:2])
    return (DENSE_BOX_LOGIT * (2.0 * (cover_y[:, :, None] * cover_x[:, None, :]) - 1.0)).astype(np.float32)[:, None]


def _coverage(cell_starts: np.ndarray, lo, hi) -> np.ndarray:
    """Fraction of each 4-pixel cell [s, s + 4) covered by [lo, hi) (arrays broadcast: one row per box)."""
    return np.clip((np.minimum(cell_starts + 4.0, hi) - np.maximum(cell_starts, lo)) / 4.0, 0.0, 1.0)


# ------------------------------------------------------------------------------------ model inputs
@dataclass
class ModelInputs:
    """What the encoder and decoder get for B prompt sets, in the framing's frames.

    images: (1 or B, 3, S, S) encoder input (one whole image, or one crop per prompt set);
    coords/labels: (B, N, 2)/(B, N) decoder prompts; mask_input: (B, 1, S/4, S/4) or None;
    windows: (B, 3) crop windows in ROI framing, else None.
    """

    coords: np.ndarray
    labels: np.ndarray
    mask_input: np.ndarray | None
    windows: np.ndarray | None = None
    images: np.ndarray | None = None


def roi_inputs(rgb: np.ndarray, points, labels, boxes, framing: InputFraming, image_size: int,
               mean=geometry.PIXEL_MEAN, std=geometry.PIXEL_STD) -> ModelInputs:
    """ROI framing: one crop per box, with the box (and any points, shared by every box) mapped into it.

    All boxes at once: the crops in one batch (`crop_inputs`), the prompts of every window in one
    vectorised mapping (the same float32 operations, in the same order, as mapping each box alone with
    `geometry.build_prompt_arrays`)."""
    if boxes is None:
        raise geometry.GeometryError("prompts: this model frames its input around a box (ROI framing); "
                                     "give one box per object (points may come with the boxes)")
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    windows = crop_windows(boxes, framing.roi_margin, framing.roi_min_side)
    pts, lab = _points_per_box(points, labels, len(boxes))
    corners = to_window_frames(boxes.reshape(-1, 2, 2), windows, image_size)
    coords = corners
    codes = np.tile(np.array([[2, 3]], dtype=np.float32), (len(boxes), 1))
    if pts is not None:
        coords = np.concatenate([to_window_frames(pts, windows, image_size), corners], axis=1)
        codes = np.concatenate([lab, codes], axis=1)
    mask_input = None
    if framing.dense_box:
        scale = image_size / windows[:, 2:3].astype(np.float64)
        mask_input = dense_box_prompt(corners.reshape(-1, 4), np.repeat(scale, 2, axis=1), image_size)
    return ModelInputs(coords, codes, mask_input, windows, crop_inputs(rgb, windows, image_size, mean, std))


def to_window_frames(xy: np.ndarray, windows: np.ndarray, image_size: int) -> np.ndarray:
    """(B, N, 2) frame x/y, row k in window k -> each window's input frame (float32): shifted to the
    window's origin, then scaled by the resize of its square (`geometry.transform_coords`' factor)."""
    windows = np.asarray(windows, dtype=np.int64).reshape(-1, 3)
    out = np.asarray(xy, dtype=np.float32) - windows[:, None, :2].astype(np.float32)
    factors = np.array([[geometry.resized_shape(int(side), int(side), image_size)[0] / int(side)]
                        for side in windows[:, 2]], dtype=np.float32)  # new / old side, rounded to float32
    return out * factors[:, :, None]


def to_window_frame_boxes(boxes: np.ndarray, windows: np.ndarray, image_size: int) -> np.ndarray:
    """(B, 4) frame boxes -> each in its own window's input frame."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 2, 2)
    return to_window_frames(boxes, windows, image_size).reshape(-1, 4)


def image_inputs(points, labels, boxes, framing: InputFraming, original_hw, image_size: int) -> ModelInputs:
    """Whole-image framing: SAM's prompt arrays, plus the dense box prompt when the model uses one."""
    coords, codes = geometry.build_prompt_arrays(points, labels, boxes, original_hw, image_size)
    mask_input = None
    if framing.dense_box and boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        in_frame = geometry.transform_boxes(boxes, original_hw, image_size)
        rh, rw = geometry.resized_shape(*original_hw, image_size)
        scale = np.array([[rw / original_hw[1], rh / original_hw[0]]])
        mask_input = dense_box_prompt(in_frame, scale, image_size)
    return ModelInputs(coords, codes, mask_input)


def _points_per_box(points, labels, batch: int):
    """Points (N, 2) shared by every box, or (B, N, 2) one set per box -> (B, N, 2), (B, N)."""
    if points is None:
        return None, None
    pts = np.asarray(points, dtype=np.float32)
    lab = np.asarray(labels, dtype=np.float32)
    if pts.ndim == 2:
        pts, lab = pts[None], lab.reshape(1, -1)
    if pts.shape[0] == 1 and batch > 1:
        pts, lab = np.repeat(pts, batch, axis=0), np.repeat(lab, batch, axis=0)
    if pts.shape[0] != batch:
        raise geometry.GeometryError(f"point_coords: {pts.shape[0]} point sets for {batch} boxes")
    return pts, lab


# ------------------------------------------------------------------------------------ map back
def paste_masks(low_res: np.ndarray, windows: np.ndarray, frame_hw, image_size: int) -> np.ndarray:
    """(B, M, s, s) low-res logits of B crops -> (B, M, H, W) bool masks in the frame.

    Each crop's masks are `window_masks`: its window's part inside the frame, pasted at its place;
    nothing outside a prompt's window is ever foreground.
    """
    low_res = np.asarray(low_res, dtype=np.float32)
    h, w = int(frame_hw[0]), int(frame_hw[1])
    out = np.zeros(low_res.shape[:2] + (h, w), dtype=bool)
    for k, window in enumerate(np.asarray(windows, dtype=np.int64)):
        masks = window_masks(low_res[k], window, (h, w), image_size)
        x0, y0 = max(int(window[0]), 0), max(int(window[1]), 0)
        out[k, :, y0:y0 + masks.shape[1], x0:x0 + masks.shape[2]] = masks
    return out


def window_masks(low_res: np.ndarray, window, frame_hw, image_size: int) -> np.ndarray:
    """(M, s, s) low-res logits of one crop -> (M, h, w) bool masks of its window's part inside the frame
    (h or w 0 when the window lies outside it), as the whole window upscaled like whole-image logits to an
    image of the window's size (`geometry.upscale_masks`) and cut would give them. Only that part is
    computed: a large defect's window is mostly outside a narrow frame (the whole square cost 2-3 ms
    per box)."""
    x0, y0, side = (int(v) for v in window)
    h, w = int(frame_hw[0]), int(frame_hw[1])
    top, bottom, left, right = max(0, -y0), min(side, h - y0), max(0, -x0), min(side, w - x0)  # window coordinates
    out = np.zeros((len(low_res), max(bottom - top, 0), max(right - left, 0)), dtype=bool)
    if out.size == 0:
        return out
    region = (top, bottom, left, right)
    for m, block in enumerate(geometry.upscale_mask_blocks(low_res, (side, side), image_size, region=region)):
        if block is None:
            continue
        (by, bx), values = block  # the block may reach past the region: keep what lies in it
        ry0, ry1 = max(by, top), min(by + values.shape[0], bottom)
        rx0, rx1 = max(bx, left), min(bx + values.shape[1], right)
        if ry1 > ry0 and rx1 > rx0:
            out[m, ry0 - top:ry1 - top, rx0 - left:rx1 - left] = values[ry0 - by:ry1 - by, rx0 - bx:rx1 - bx]
    return out
