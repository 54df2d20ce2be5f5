"""The formats a bench compares, behind one small interface.

Each runner: `open()`, `encode(image) -> (handle, {preprocess_ms, encoder_ms})`,
`segment(handle, item) -> (masks (K, H, W) bool, {prompt_ms, decoder_ms, postprocess_ms})`.
Bundle graph sets run through `edgesam.runtime` exactly as line software would; the PyTorch
reference and the torch fast path share the same geometry code.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgesam import geometry
from edgesam.types import select_outputs


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1e3


def file_bytes(paths) -> int:
    """Bytes on disk of graph files plus any external-data file beside each."""
    total = 0
    for path in map(Path, paths):
        total += path.stat().st_size
        data = path.with_name(path.name + ".data")
        total += data.stat().st_size if data.is_file() else 0
    return total


class RuntimeRunner:
    """One graph set of a bundle, through `edgesam.runtime.Segmenter`."""

    def __init__(self, bundle: str, graph_set: str, threads: int | None = None):
        self.bundle, self.graph_set, self.threads = bundle, graph_set, threads
        self.name = graph_set
        self.seg = None

    def describe(self, manifest: dict) -> dict:
        entries = manifest["graphs"][self.graph_set]
        return {"backend": "tensorrt" if entries["encoder"]["format"] == "tensorrt" else "onnxruntime",
                "precision": entries["encoder"].get("precision", self.graph_set),
                "size_bytes": file_bytes(Path(self.bundle) / entries[p]["file"] for p in ("encoder", "decoder"))}

    def open(self) -> None:
        from edgesam.runtime import Segmenter

        self.seg = Segmenter.open(self.bundle, graph_set=self.graph_set, threads=self.threads, warmup=False)

    def encode(self, image):
        emb = self.seg.encode(image)
        return emb, dict(emb.timings)

    def segment(self, emb, item):
        res = self.seg.segment(emb, **item.prompt_kwargs)
        return res.masks[:, 0], dict(res.timings)


class TorchRunner:
    """The PyTorch model on the reference predictor's path (encoder, `decode_all`, shared geometry).

    `fast=None` is the fp32 eager reference; a `FastPathConfig` gives the torch fast path.
    """

    def __init__(self, checkpoint: str, fast=None, device: str = "cpu"):
        self.checkpoint, self.fast, self.device = checkpoint, fast, device
        self.name = "pytorch" if fast is None else f"torch_fast_{fast.tag}"
        self.predictor = None

    def describe(self, manifest: dict) -> dict:
        precision = "fp32" if self.fast is None else self.fast.dtype
        return {"backend": "pytorch", "precision": precision, "size_bytes": file_bytes([self.checkpoint])}

    def open(self) -> None:
        from edgesam.models import create_model

        model = create_model(checkpoint=self.checkpoint)
        if self.fast is None:
            from edgesam.predict import SamReferencePredictor

            self.predictor = SamReferencePredictor(model, self.device)
        else:
            from edgesam.bench.fast_path import TorchFastPath

            self.predictor = TorchFastPath(model, self.fast, self.device)
        self.image_size = model.image_encoder.img_size

    def encode(self, image):
        start = time.perf_counter()
        x, hw, _ = geometry.preprocess(image, self.image_size)
        pre_ms = _ms(start)
        start = time.perf_counter()
        features = self.predictor.encode_array(x) if self.fast else self._encode_reference(x)
        return (features, hw), {"preprocess_ms": pre_ms, "encoder_ms": _ms(start)}

    def _encode_reference(self, x):
        import torch

        with torch.inference_mode():
            return self.predictor.model.image_encoder(torch.from_numpy(x).to(self.device))

    def segment(self, handle, item):
        import torch

        features, hw = handle
        start = time.perf_counter()
        coords, labels = geometry.build_prompt_arrays(item.points, item.labels, item.boxes, hw, self.image_size)
        prompt_ms = _ms(start)
        start = time.perf_counter()
        with torch.inference_mode():
            self.predictor.set_embedding(features, hw)
            low_res, iou = self.predictor.decode(coords, labels, None)
        dec_ms = _ms(start)
        start = time.perf_counter()
        low_res, _ = select_outputs(low_res, iou, False)
        masks = geometry.upscale_masks(low_res, hw, self.image_size)[:, 0]
        return masks, {"prompt_ms": prompt_ms, "decoder_ms": dec_ms, "postprocess_ms": _ms(start)}
