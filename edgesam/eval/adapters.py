"""Any predictor behind one tiny interface, so one scorer (and bench's timing) serves them all.

    handle, encode_timings = adapter.encode(image)
    masks, segment_timings = adapter.segment(handle, item)     # (K, H, W) bool, one mask per prompt

Masks come only through each predictor's public calls (`set_image`/`predict` of the PyTorch
reference and the torch fast path, `encode`/`segment` of the runtime), so a model whose framing
lives inside those calls (e.g. crops around the prompt) is scored exactly as it answers.
Timings are milliseconds: `encode_ms` / `segment_ms` (wall time of the call, every adapter) plus
whatever parts the predictor reports itself (the runtime's preprocess, encoder, decoder, ...).
"""
from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np

from edgesam.eval.plan import ImagePrompts
from edgesam_runtime.timing import ms_since


class MaskPredictor(Protocol):
    name: str

    def encode(self, image: np.ndarray) -> tuple[Any, dict]: ...

    def segment(self, handle: Any, item: ImagePrompts) -> tuple[np.ndarray, dict]: ...


def _one_mask_per_prompt(prediction, multimask: bool) -> np.ndarray:
    """(K, H, W): the single mask, or the most confident of the multimask candidates."""
    return (prediction.best() if multimask else prediction).masks[:, 0]


class TorchPredictorAdapter:
    """A predictor with `set_image(image)` and `predict(points, labels, boxes, multimask=...)`:
    `SamReferencePredictor` (the PyTorch reference) or `TorchFastPath`."""

    def __init__(self, predictor, name: str = "pytorch"):
        self.predictor, self.name = predictor, name

    def _sync(self) -> None:
        device = getattr(self.predictor, "device", None)
        if getattr(device, "type", "cpu") == "cuda":  # CUDA calls return before the GPU is done
            import torch

            torch.cuda.synchronize(device)

    def encode(self, image):
        start = time.perf_counter()
        self.predictor.set_image(image)
        self._sync()
        return None, {"encode_ms": ms_since(start)}

    def segment(self, handle, item: ImagePrompts):
        start = time.perf_counter()
        prediction = self.predictor.predict(item.points, item.labels, item.boxes, multimask=item.multimask)
        return _one_mask_per_prompt(prediction, item.multimask), {"segment_ms": ms_since(start)}


class SegmenterAdapter:
    """The torch-free runtime (`edgesam_runtime.Segmenter`), as line software calls it."""

    def __init__(self, segmenter, name: str | None = None):
        self.segmenter = segmenter
        self.name = name or segmenter.info.graph_set

    def encode(self, image):
        start = time.perf_counter()
        embedding = self.segmenter.encode(image)
        return embedding, {"encode_ms": ms_since(start), **embedding.timings}

    def segment(self, embedding, item: ImagePrompts):
        start = time.perf_counter()
        result = self.segmenter.segment(embedding, item.points, item.labels, item.boxes, multimask=item.multimask)
        return _one_mask_per_prompt(result, item.multimask), {"segment_ms": ms_since(start), **result.timings}


class BoxFillAdapter:
    """The floor any useful model must clear: each prompt box, filled (inclusive corners), is the mask."""

    name = "box-filled baseline"

    def encode(self, image):
        return image.shape[:2], {}

    def segment(self, hw, item: ImagePrompts):
        if item.boxes is None:
            raise ValueError("prompt: the box-filled baseline needs box prompts")
        return box_fill_masks(item.boxes, hw), {}


def box_fill_masks(boxes: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(K, H, W) bool: box k filled, corners inclusive and rounded to pixels."""
    out = np.zeros((len(boxes), *hw), dtype=bool)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        out[k, int(round(y0)):int(round(y1)) + 1, int(round(x0)):int(round(x1)) + 1] = True
    return out
