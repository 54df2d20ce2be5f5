"""The formats a bench compares: each opens into a `edgesam.eval` adapter (how masks are obtained)
and describes itself (backend, precision, bytes on disk).

Bundle graph sets run through `edgesam_runtime.Segmenter` exactly as line software would; the
PyTorch reference and the torch fast path answer through the reference predictor's own calls.
"""
from __future__ import annotations

from pathlib import Path

from edgesam.eval.adapters import SegmenterAdapter, TorchPredictorAdapter
from edgesam_runtime import Segmenter


def file_bytes(paths) -> int:
    """Bytes on disk of graph files plus any external-data file beside each."""
    total = 0
    for path in map(Path, paths):
        total += path.stat().st_size
        data = path.with_name(path.name + ".data")
        total += data.stat().st_size if data.is_file() else 0
    return total


def graph_set_bytes(bundle, entries: dict) -> int:
    """Bytes on disk of a graph set's encoder and decoder, weights files included (from the manifest)."""
    total = 0
    for part in ("encoder", "decoder"):
        entry = entries[part]
        path = Path(bundle) / entry["file"]
        total += entry.get("bytes") or path.stat().st_size
        total += sum(e.get("bytes") or (Path(bundle) / e["file"]).stat().st_size for e in entry.get("external_data", []))
    return total


class RuntimeFormat:
    """One graph set of a bundle on one backend, through `edgesam_runtime.Segmenter`.

    `name` is the graph set for the backend `Segmenter.open(bundle, graph_set)` takes by default
    (`default`, with the reason `choice`), and "graph_set@backend" for the other backends that can
    run the same graphs.
    """

    def __init__(self, bundle: str, graph_set: str, threads: int | None = None, backend: str = "auto",
                 default: bool = True, choice: str | None = None):
        self.bundle, self.graph_set, self.threads = bundle, graph_set, threads
        self.backend, self.default, self.choice = backend, default, choice
        self.name = graph_set if default else f"{graph_set}@{backend}"
        self.opened: dict = {}  # what the backend reports once open (the precision it actually runs in)

    def describe(self, manifest: dict) -> dict:
        entries = manifest["graphs"][self.graph_set]
        return {"graph_set": self.graph_set, "backend": self.backend, "default": self.default, "choice": self.choice,
                "precision": entries["encoder"].get("precision", self.graph_set),
                "size_bytes": graph_set_bytes(self.bundle, entries)}

    def open(self) -> SegmenterAdapter:
        seg = Segmenter.open(self.bundle, graph_set=self.graph_set, backend=self.backend, threads=self.threads,
                             warmup=False)
        precision = seg.info.entry("encoder").get("precision", self.graph_set)
        executed = getattr(seg.backend, "execution_precision", None)
        self.opened = {"ran_as": ran_as(precision, executed["encoder"] if executed else None), "providers": seg.providers}
        return SegmenterAdapter(seg, self.name)


def ran_as(precision: str, float_precision: str | None) -> str:
    """What the encoder ran in: the backend's float precision where it reports one (OpenVINO runs a bf16
    set in fp32 on a CPU without bf16 math), int8 graphs as int8 with their float parts named."""
    if float_precision is None:
        return precision
    if precision == "int8":
        return f"int8 (float parts {float_precision})"
    return float_precision


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
            from edgesam.reference.predictor import SamReferencePredictor

            return TorchPredictorAdapter(SamReferencePredictor(model, self.device), self.name)
        from edgesam.bench.fast_path import TorchFastPath

        return TorchPredictorAdapter(TorchFastPath(model, self.fast, self.device), self.name)
