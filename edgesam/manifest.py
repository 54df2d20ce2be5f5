"""The bundle manifest: what a bundle holds and how to use it, readable without Python or torch.

Written by `edgesam export`, read by `edgesam.runtime` and `edgesam bench`; documented for C++
integrators in docs/bundle.md. Layout of `manifest.json` (format_version 1):

    format, format_version, edgesam_version, created
    model:       variant, image_size, embed_dim, embedding_size, low_res_size, arch{...}, init
    preprocess:  pixel_mean[3], pixel_std[3], resize, interpolation, pad, layout
    prompts:     max_points, max_boxes, labels{"-1".."3": meaning}
    io:          encoder{inputs, outputs}, decoder{inputs, outputs}: name, dtype, shape (str axes dynamic)
    graphs:      {graph_set: {"encoder": entry, "decoder": entry}}, graph_set in fp32|fp16|int8|trt_*|ov_*
                 entry: file, format (onnx|tensorrt|openvino), precision, sha256, bytes, [external_data[{file,
                 sha256, bytes}]], [excluded_nodes], [tensorrt{...}], [openvino{version, inference_precision}]
    quantization: {graph_set: {method, ..., calibration{count, sha256, source}}}; ov_int8 adds ignored_scope,
                 nncf settings and built_on_cpu
    backend_timings: optional encoder ms per ONNX set and CPU backend, with the CPU they were measured on
    source:      checkpoint, checkpoint_sha256
    versions:    exporter tool versions (torch, onnx, onnxruntime, openvino, nncf, tensorrt, cuda, gpu,
                 compute_capability) and the CPU (model, instruction-set flags) the bundle was built on
    checks:      {graph_set: figures measured at export (max abs diff, mask IoU vs PyTorch)}
    refiner:     optional: a model with a mask refiner (model.refine, model.mask_grid): one fp32 ONNX entry
                 (file, format, precision, sha256, bytes, stride, grid) every graph set's decoder output
                 goes through; io.refiner names its tensors
"""
from __future__ import annotations

import json
from pathlib import Path

from edgesam.utils.files import sha256_file, write_json_atomic

MANIFEST_NAME = "manifest.json"
FORMAT = "edgesam-bundle"
FORMAT_VERSION = 1
GRAPH_PARTS = ("encoder", "decoder")
PROMPT_LABELS = {"-1": "padding", "0": "negative point", "1": "positive point", "2": "box top-left", "3": "box bottom-right"}
REQUIRED = {
    "format": str, "format_version": int, "model": dict, "preprocess": dict, "prompts": dict, "graphs": dict,
}


class BundleError(ValueError):
    """A bundle that is incomplete, corrupt, tampered with, or from an unsupported format version."""


def read_manifest(bundle_dir: str | Path) -> dict:
    """Load and validate `manifest.json`; raises BundleError naming the file and the field."""
    path = Path(bundle_dir) / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{path}: missing; not an edgesam bundle (or its export did not finish)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path}: not valid JSON ({exc})") from exc
    validate_manifest(manifest, path)
    return manifest


def validate_manifest(manifest: dict, path: str | Path = MANIFEST_NAME) -> None:
    for key, kind in REQUIRED.items():
        if not isinstance(manifest.get(key), kind):
            raise BundleError(f"{path}: field {key!r}: expected {kind.__name__}, got {type(manifest.get(key)).__name__}")
    if manifest["format"] != FORMAT:
        raise BundleError(f"{path}: field 'format': expected {FORMAT!r}, got {manifest['format']!r}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"{path}: format_version {manifest['format_version']} is not supported by this edgesam "
            f"(reads version {FORMAT_VERSION}); re-export the bundle with this version or upgrade edgesam"
        )
    for name, graph_set in manifest["graphs"].items():
        for part in GRAPH_PARTS:
            entry = graph_set.get(part) if isinstance(graph_set, dict) else None
            if not isinstance(entry, dict) or not {"file", "format", "precision", "sha256"} <= set(entry):
                raise BundleError(f"{path}: graphs.{name}.{part}: expected file, format, precision and sha256")
    for key in ("image_size", "embed_dim"):
        if not isinstance(manifest["model"].get(key), int):
            raise BundleError(f"{path}: field model.{key}: expected an integer")
    refiner = manifest.get("refiner")
    if refiner is not None and (not isinstance(refiner, dict) or not {"file", "format", "precision", "sha256",
                                                                      "grid"} <= set(refiner)):
        raise BundleError(f"{path}: field refiner: expected file, format, precision, sha256 and grid")


def graph_path(bundle_dir: str | Path, manifest: dict, graph_set: str, part: str) -> Path:
    if graph_set not in manifest["graphs"]:
        raise BundleError(f"{bundle_dir}: no graph set {graph_set!r}; it has {sorted(manifest['graphs'])}")
    return Path(bundle_dir) / manifest["graphs"][graph_set][part]["file"]


def verify_graphs(bundle_dir: str | Path, manifest: dict, graph_set: str) -> None:
    """Refuse a graph file (the set's, and the refiner where there is one) that is missing or whose
    sha256 differs from the manifest's."""
    for part in GRAPH_PARTS:
        graph_path(bundle_dir, manifest, graph_set, part)  # names the set when it does not exist
        _verify_entry(bundle_dir, manifest["graphs"][graph_set][part], f"graphs.{graph_set}.{part}")
    if manifest.get("refiner") is not None:
        _verify_entry(bundle_dir, manifest["refiner"], "refiner")


def _verify_entry(bundle_dir: str | Path, entry: dict, field: str) -> None:
    path = Path(bundle_dir) / entry["file"]
    if not path.is_file():
        raise BundleError(f"{path}: listed in the manifest ({field}) but missing")
    if sha256_file(path) != entry["sha256"]:
        raise BundleError(f"{path}: sha256 differs from the manifest's {field}: corrupt or tampered")
    for extra in entry.get("external_data", []):  # weights beside the graph (ONNX .data, OpenVINO .bin)
        data = path.parent / extra["file"]
        if not data.is_file():
            raise BundleError(f"{data}: listed in the manifest ({field}.external_data) but missing")
        if sha256_file(data) != extra["sha256"]:
            raise BundleError(f"{data}: sha256 differs from the manifest's {field}.external_data: corrupt or tampered")


def graph_entry(bundle_dir: str | Path, file_name: str, fmt: str, precision: str, **extra) -> dict:
    """A manifest entry for a graph file already written into the bundle."""
    path = Path(bundle_dir) / file_name
    return {"file": file_name, "format": fmt, "precision": precision, "sha256": sha256_file(path),
            "bytes": path.stat().st_size, **extra}


def write_manifest(bundle_dir: str | Path, manifest: dict) -> Path:
    validate_manifest(manifest, Path(bundle_dir) / MANIFEST_NAME)
    path = Path(bundle_dir) / MANIFEST_NAME
    write_json_atomic(path, manifest)
    return path
