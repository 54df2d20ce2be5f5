"""The formats a bench compares: each opens into a `edgesam.eval` adapter (how masks are obtained)
and describes itself (backend, precision, bytes on disk).

Bundle graph sets run through `edgesam.runtime.Segmenter` exactly as line software would; the
PyTorch reference and the torch fast path answer through the reference predictor's own calls.
"""
from __future__ import annotations

from pathlib import Path

from edgesam.eval.adapters import SegmenterAdapter, TorchPredictorAdapter


def file_bytes(paths) -> int:
    """Bytes on disk of graph files plus any external-data file beside each."""
    total = 0
    for path in map(Path, paths):
        total += path.stat().st_size
        data = path.with_name(path.name + ".data")
        total += data.stat().st_size if data.is_file() else 0
    return total


class RuntimeFormat:
    """One graph set of a bundle, through `edgesam.runtime.Segmenter`."""

    def __init__(self, bundle: str, graph_set: str, threads: int | None = None):
        self.bundle, self.graph_set, self.threads = bundle, graph_set, threads
        self.name = graph_set

    def describe(self, manifest: dict) -> dict:
        entries = manifest["graphs"][self.graph_set]
        return {"backend": "tensorrt" if entries["encoder"]["format"] == "tensorrt" else "onnxruntime",
                "precision": entries["encoder"].get("precision", self.graph_set),
                "size_bytes": file_bytes(Path(self.bundle) / entries[p]["file"] for p in ("encoder", "decoder"))}

    def open(self) -> SegmenterAdapter:
        from edgesam.runtime import Segmenter

        seg = Segmenter.open(self.bundle, graph_set=self.graph_set, threads=self.threads, warmup=False)
        return SegmenterAdapter(seg, self.name)


class TorchFormat:
    """The PyTorch model: `fast=None` is the fp32 reference predictor, a `FastPathConfig` the torch fast path."""

    def __init__(self, checkpoint: str, fast=None, device: str = "cpu"):
        self.checkpoint, self.fast, self.device = checkpoint, fast, device
        self.name = "pytorch" if fast is None else f"torch_fast_{fast.tag}"

    def describe(self, manifest: dict) -> dict:
        precision = "fp32" if self.fast is None else self.fast.dtype
        return {"backend": "pytorch", "precision": precision, "size_bytes": file_bytes([self.checkpoint])}

    def open(self) -> TorchPredictorAdapter:
        from edgesam.models import create_model

        model = create_model(checkpoint=self.checkpoint)
        if self.fast is None:
            from edgesam.predict import SamReferencePredictor

            return TorchPredictorAdapter(SamReferencePredictor(model, self.device), self.name)
        from edgesam.bench.fast_path import TorchFastPath

        return TorchPredictorAdapter(TorchFastPath(model, self.fast, self.device), self.name)
