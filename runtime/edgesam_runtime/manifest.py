"""The bundle manifest: what a bundle holds and how to use it, readable without Python or torch.

Written by `edgesam export`, read by `edgesam_runtime` and `edgesam bench`; documented for C++
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

The fields readers rely on are checked against runtime/edgesam_runtime/schemas/manifest.schema.json (`edgesam_runtime.schema`);
every file the manifest names must resolve inside the bundle folder.
"""
from __future__ import annotations

import os
from pathlib import Path

from edgesam_runtime import schema
from edgesam_runtime.files import sha256_file, write_json_atomic

MANIFEST_NAME = "manifest.json"
FORMAT = "edgesam-bundle"
FORMAT_VERSION = 1
GRAPH_PARTS = ("encoder", "decoder")
PROMPT_LABELS = {"-1": "padding", "0": "negative point", "1": "positive point", "2": "box top-left", "3": "box bottom-right"}


class BundleError(schema.SchemaError):
    """A bundle that is incomplete, corrupt, tampered with, or from an unsupported format version."""


def read_manifest(bundle_dir: str | Path) -> dict:
    """Load and validate `manifest.json`; raises BundleError naming the file and the field."""
    path = Path(bundle_dir) / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{path}: missing; not an edgesam bundle (or its export did not finish)")
    manifest = schema.load_json(path, error=BundleError)
    validate_manifest(manifest, path)
    return manifest


def validate_manifest(manifest: dict, path: str | Path = MANIFEST_NAME) -> None:
    """The manifest against `runtime/edgesam_runtime/schemas/manifest.schema.json` (types, ranges, file names, hashes).

    The format version is judged first: a newer bundle gets "upgrade edgesam", not a field error.
    """
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version != FORMAT_VERSION:
        raise BundleError(
            f"{path}: format_version {version} is not supported by this edgesam "
            f"(reads version {FORMAT_VERSION}); re-export the bundle with this version or upgrade edgesam"
        )
    schema.check(manifest, "manifest", str(path), BundleError)


def graph_path(bundle_dir: str | Path, manifest: dict, graph_set: str, part: str) -> Path:
    """The graph file of `part`, refused unless it lies inside the bundle folder (links included)."""
    if graph_set not in manifest["graphs"]:
        raise BundleError(f"{bundle_dir}: no graph set {graph_set!r}; it has {sorted(manifest['graphs'])}")
    name = manifest["graphs"][graph_set][part]["file"]
    return schema.inside_folder(bundle_dir, name, f"{Path(bundle_dir) / MANIFEST_NAME}: graphs.{graph_set}.{part}.file",
                                BundleError)


def verify_links(bundle_dir: str | Path) -> None:
    """Refuse a bundle holding a symbolic link that leads outside it: a backend reads files the graphs
    name (ONNX external data, OpenVINO weights) without asking the manifest."""
    for top, dirs, files in os.walk(bundle_dir):
        for name in dirs + files:
            path = os.path.join(top, name)
            if os.path.islink(path):
                schema.inside_folder(bundle_dir, os.path.relpath(path, bundle_dir), path, BundleError)


def verify_graphs(bundle_dir: str | Path, manifest: dict, graph_set: str) -> None:
    """Refuse a graph file (the set's, and the refiner where there is one) that is missing, lies outside
    the bundle, or whose sha256 differs from the manifest's."""
    verify_links(bundle_dir)
    for part in GRAPH_PARTS:
        path = graph_path(bundle_dir, manifest, graph_set, part)
        _verify_entry(bundle_dir, path, manifest["graphs"][graph_set][part], f"graphs.{graph_set}.{part}")
    refiner = manifest.get("refiner")
    if refiner is not None:
        path = schema.inside_folder(bundle_dir, refiner["file"], f"{Path(bundle_dir) / MANIFEST_NAME}: refiner.file",
                                    BundleError)
        _verify_entry(bundle_dir, path, refiner, "refiner")


def _verify_entry(bundle_dir: str | Path, path: Path, entry: dict, field: str) -> None:
    """One manifest entry's file (inside the bundle already) and its external data against their hashes."""
    if not path.is_file():
        raise BundleError(f"{path}: listed in the manifest ({field}) but missing")
    if sha256_file(path) != entry["sha256"]:
        raise BundleError(f"{path}: sha256 differs from the manifest's {field}: corrupt or tampered")
    for i, extra in enumerate(entry.get("external_data", [])):  # weights beside the graph (ONNX .data, OpenVINO .bin)
        relative = str(Path(entry["file"]).parent / extra["file"])
        data = schema.inside_folder(bundle_dir, relative,
                                    f"{Path(bundle_dir) / MANIFEST_NAME}: {field}.external_data[{i}].file", BundleError)
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
