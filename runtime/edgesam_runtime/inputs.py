"""Validation of everything a caller hands the runtime, before any of it reaches a graph.

Each check raises `InvalidInputError` naming the argument, what was expected and what came, so a
bad call is refused cleanly and the segmenter stays usable.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesam_runtime.errors import InvalidInputError

POINT_LABELS = (-1.0, 0.0, 1.0)  # padding, negative, positive; boxes come in as boxes


def check_image(image) -> np.ndarray:
    """The image as a plain ndarray: subclasses (np.matrix, masked arrays) change what indexing and
    arithmetic return, so the rest of the runtime sees their data through a base-class view (no copy)."""
    if not isinstance(image, np.ndarray):
        raise InvalidInputError(f"image: expected a numpy array (HxW, HxWx1, HxWx3 or HxWx4), got {type(image).__name__}")
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise InvalidInputError(f"image: expected dtype uint8 or uint16, got {image.dtype}")
    ok_shape = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))
    if not ok_shape:
        raise InvalidInputError(f"image: expected HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}")
    if min(image.shape[:2]) < 1:
        raise InvalidInputError(f"image: empty image of shape {image.shape}")
    return image


def float_array(name: str, value, ndims: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """`value` as a float array of one of `ndims` dimensions (NaN allowed: see `_finite_float`)."""
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        ragged = "inhomogeneous" in str(exc)  # numpy's word for nested lists of unequal lengths
        expected = "entries of equal length" if ragged else "numbers"
        raise InvalidInputError(f"{name}: expected {expected}, got {_preview(value)}") from None
    if arr.ndim not in ndims:
        raise InvalidInputError(f"{name}: expected {' or '.join(f'{d}-D' for d in ndims)} array, got shape {arr.shape}")
    return arr


def _preview(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{type(value).__name__} {text[:limit]}..."


def _finite_float(name: str, value, ndims: tuple[int, ...]) -> np.ndarray:
    arr = float_array(name, value, ndims)
    if not np.isfinite(arr).all():
        raise InvalidInputError(f"{name}: contains NaN or infinite values")
    return arr


def _inside(name: str, xy: np.ndarray, original_hw: tuple[int, int]) -> None:
    problem = _prompt_module().outside_image(name, xy, original_hw)
    if problem:
        raise InvalidInputError(problem)


def check_points(points, labels, original_hw, max_points: int | None):
    """(N, 2) or (B, N, 2) points with (N,) or (B, N) labels in {-1, 0, 1}; None when no points."""
    if points is None and labels is None:
        return None, None
    if points is None or labels is None:
        raise InvalidInputError("points/labels: give both (labels: 1 positive, 0 negative) or neither")
    pts = _finite_float("points", points, (2, 3))
    lab = _finite_float("labels", labels, (1, 2))
    if pts.shape[-1] != 2:
        raise InvalidInputError(f"points: expected shape (N, 2) or (B, N, 2), got {pts.shape}")
    if lab.shape != pts.shape[:-1]:
        raise InvalidInputError(f"labels: expected shape {pts.shape[:-1]} to match points {pts.shape}, got {lab.shape}")
    if pts.shape[-2] == 0:
        raise InvalidInputError("points: empty; leave points out to prompt with boxes only")
    if pts.ndim == 3 and pts.shape[0] == 0:  # the decoder graphs fail on an empty batch; refuse it here
        raise InvalidInputError(f"points: expected (B, N, 2) with B >= 1 prompt sets, got {pts.shape}")
    if not np.isin(lab, POINT_LABELS).all():
        raise InvalidInputError(f"labels: expected 1 (positive), 0 (negative) or -1 (padding), got {np.unique(lab).tolist()}")
    if max_points is not None and pts.shape[-2] > max_points:
        raise InvalidInputError(f"points: {pts.shape[-2]} points per prompt set; this bundle allows at most {max_points}")
    _inside("points", pts, original_hw)
    return pts, lab


def check_boxes(boxes, original_hw, max_boxes: int | None):
    """(4,) or (B, 4) x0, y0, x1, y1 boxes inside the image; None when no boxes."""
    if boxes is None:
        return None
    arr = _finite_float("boxes", boxes, (1, 2))
    arr = arr.reshape(1, -1) if arr.ndim == 1 else arr
    if arr.shape[-1] != 4 or arr.shape[0] == 0:
        raise InvalidInputError(f"boxes: expected shape (4,) or (B, 4) with B >= 1 as x0, y0, x1, y1, got {arr.shape}")
    inverted = [box for box in arr.tolist() if _prompt_module().box_is_inverted(box)]
    if inverted:
        raise InvalidInputError(f"boxes: {_prompt_module().BOX_CORNERS_EXPECTED}, got {inverted[0]}")
    if max_boxes is not None and len(arr) > max_boxes:
        raise InvalidInputError(f"boxes: {len(arr)} boxes in one call; this bundle allows at most {max_boxes}")
    _inside("boxes", arr.reshape(-1, 2, 2), original_hw)
    return arr


def check_mask_input(mask_input, batch: int, low_res: int) -> np.ndarray | None:
    """(B, 1, m, m), (1, m, m) or (m, m) low-res logits from an earlier call, broadcast to B."""
    if mask_input is None:
        return None
    arr = _finite_float("mask_input", mask_input, (2, 3, 4))
    arr = arr.reshape((1, 1) + arr.shape[-2:]) if arr.ndim < 4 else arr
    if arr.shape[1:] != (1, low_res, low_res) or arr.shape[0] not in (1, batch):
        raise InvalidInputError(
            f"mask_input: expected ({batch}, 1, {low_res}, {low_res}) low-res logits (one mask per prompt set), got {arr.shape}")
    return np.ascontiguousarray(np.broadcast_to(arr, (batch, 1, low_res, low_res)))


def parse_prompts(prompts):
    """Prompt-file form -> (points, labels, boxes) for `Segmenter.segment`.

    Accepts the list of {"type": "point", "data": [x, y], "label": 1} / {"type": "box", "data": [x0,
    y0, x1, y1]} items (parsed by `edgesam_runtime.prompts`, as the CLI does), that list as JSON
    text or a path to such a file, or a dict with any of "points", "labels", "boxes". Points apply to
    every box (SAM's point + box prompt).
    """
    try:
        if isinstance(prompts, dict):
            unknown = set(prompts) - {"points", "labels", "boxes"}
            if unknown:
                raise InvalidInputError(f"prompts: unknown keys {sorted(unknown)}; expected points, labels, boxes")
            return prompts.get("points"), prompts.get("labels"), prompts.get("boxes")
        if isinstance(prompts, str) and prompts.lstrip().startswith("["):
            parsed = _prompt_module().parse_prompt_list(_json(prompts))
        elif isinstance(prompts, (str, Path)):
            parsed = _prompt_module().read_prompt_file(prompts)
        else:
            parsed = _prompt_module().parse_prompt_list(list(prompts) if isinstance(prompts, tuple) else prompts)
    except ValueError as exc:  # edgesam_runtime.prompts.PromptError names the entry and what was expected
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(str(exc)) from None
    return parsed.points, parsed.labels, parsed.boxes


def _prompt_module():
    from edgesam_runtime import prompts  # numpy-only, shared with the CLI

    return prompts


def _json(text: str):
    from edgesam_runtime import schema

    return schema.parse_json(text, "prompts", InvalidInputError)
