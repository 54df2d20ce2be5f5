"""Bundle loading for the runtime: manifest, graph hashes, and graph I/O against `edgesam_runtime.io_spec`.

A graph whose tensor names, dtypes or static shapes differ from the contract is refused at open time
with a message naming the graph and the tensor, never at the first inference on the line.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgesam_runtime import io_spec
from edgesam_runtime import manifest as mf
from edgesam_runtime.roi import WHOLE_IMAGE, InputFraming
from edgesam_runtime.errors import BundleError, InvalidInputError

FLOAT_TYPES = ("float32", "float16")  # fp16 graphs may keep fp16 I/O; the runtime casts at the boundary


@dataclass(frozen=True)
class BundleInfo:
    """What the runtime needs from a manifest, read once at open time."""

    path: Path
    manifest: dict
    graph_set: str
    image_size: int
    embed_channels: int
    max_points: int | None
    max_boxes: int | None
    pixel_mean: tuple
    pixel_std: tuple
    framing: InputFraming = WHOLE_IMAGE  # how the model frames its input (whole image or a crop per box)
    refiner_grid: int | None = None  # side of a mask refiner's grid, None when the model has no refiner

    @property
    def embedding_size(self) -> int:
        return io_spec.embedding_size(self.image_size)

    @property
    def low_res_size(self) -> int:
        return io_spec.low_res_size(self.image_size)

    def entry(self, part: str) -> dict:
        return self.manifest["graphs"][self.graph_set][part]

    def graph_file(self, part: str) -> Path:
        return mf.graph_path(self.path, self.manifest, self.graph_set, part)

    @property
    def refiner_file(self) -> Path | None:
        """The mask refiner's graph, shared by every graph set (None: masks on the decoder's grid)."""
        entry = self.manifest.get("refiner")
        return None if entry is None else self.path / entry["file"]


def bundle_path(bundle_dir) -> Path:
    """`bundle_dir` as a Path; anything but a str or path-like is a bad call, not a bad bundle."""
    if not isinstance(bundle_dir, (str, os.PathLike)):
        raise InvalidInputError(f"bundle_dir: expected the path of a bundle directory (str or pathlib.Path), "
                                f"got {type(bundle_dir).__name__}")
    return Path(bundle_dir)


def load_bundle(bundle_dir, graph_set: str) -> BundleInfo:
    """Read and validate the manifest, then verify the graph set's files against their hashes."""
    bundle_dir = bundle_path(bundle_dir)
    if not isinstance(graph_set, str):
        raise InvalidInputError(f"graph_set: expected the name of a graph set (str, e.g. 'fp32'), "
                                f"got {type(graph_set).__name__}")
    try:
        manifest = mf.read_manifest(bundle_dir)
        if graph_set not in manifest["graphs"]:
            raise BundleError(f"{bundle_dir}: no graph set {graph_set!r}; this bundle has {sorted(manifest['graphs'])}")
        mf.verify_graphs(bundle_dir, manifest, graph_set)
    except BundleError:
        raise
    except mf.BundleError as exc:
        raise BundleError(str(exc)) from None
    model, prompts, pre = manifest["model"], manifest.get("prompts", {}), manifest["preprocess"]
    try:
        framing = InputFraming.from_dict(model.get("framing"), "model.framing")
    except ValueError as exc:
        raise BundleError(f"{bundle_dir / mf.MANIFEST_NAME}: {exc}") from None
    return BundleInfo(
        path=bundle_dir, manifest=manifest, graph_set=graph_set, image_size=model["image_size"],
        embed_channels=_embed_channels(manifest), max_points=prompts.get("max_points"),
        max_boxes=prompts.get("max_boxes"),
        pixel_mean=tuple(pre.get("pixel_mean", (123.675, 116.28, 103.53))),
        pixel_std=tuple(pre.get("pixel_std", (58.395, 57.12, 57.375))),
        framing=framing, refiner_grid=_refiner_grid(manifest, bundle_dir),
    )


def _refiner_grid(manifest: dict, bundle_dir: Path) -> int | None:
    entry = manifest.get("refiner")
    if entry is None:
        return None
    grid, size = entry["grid"], manifest["model"]["image_size"]
    if not isinstance(grid, int) or isinstance(grid, bool) or grid < 1 or size % grid:
        raise BundleError(f"{bundle_dir / mf.MANIFEST_NAME}: field refiner.grid: expected a divisor of "
                          f"model.image_size {size}, got {grid!r}")
    return grid


def _embed_channels(manifest: dict) -> int:
    """Channels of image_embeddings: the manifest's io record, else SAM's neck width (256)."""
    for spec in manifest.get("io", {}).get("encoder", {}).get("outputs", []):
        if spec.get("name") == io_spec.ENCODER_OUTPUT and len(spec.get("shape", [])) == 4:
            return int(spec["shape"][1])
    return 256


def verify_io(info: BundleInfo, graph_io: dict) -> None:
    """Compare each graph's tensors with io_spec (names, dtypes, static axes); raise BundleError."""
    roi = info.framing.roi
    specs = {"encoder": io_spec.encoder_specs(info.image_size, info.embed_channels, roi),
             "decoder": io_spec.decoder_specs(info.image_size, info.embed_channels, roi)}
    if info.refiner_grid is not None:
        specs["refiner"] = io_spec.refiner_specs(info.image_size, info.refiner_grid)
    for part, (spec_in, spec_out) in specs.items():
        actual_in, actual_out = graph_io[part]
        where = info.refiner_file if part == "refiner" else info.graph_file(part)
        _compare(where, "input", spec_in, actual_in)
        _compare(where, "output", spec_out, actual_out)


def _compare(where: Path, kind: str, specs, actual: dict) -> None:
    expected = {s.name for s in specs}
    if set(actual) != expected:
        raise BundleError(f"{where}: {kind} tensors {sorted(actual)}; expected {sorted(expected)} (edgesam_runtime.io_spec)")
    for spec in specs:
        dtype, shape = actual[spec.name]
        if dtype not in FLOAT_TYPES:
            raise BundleError(f"{where}: {kind} {spec.name!r} has dtype {dtype}; expected float32 or float16")
        if len(shape) != len(spec.shape):
            raise BundleError(f"{where}: {kind} {spec.name!r} has shape {shape}; expected {spec.shape}")
        for axis, (want, got) in enumerate(zip(spec.shape, shape)):
            if isinstance(want, int) and isinstance(got, int) and want != got:
                raise BundleError(
                    f"{where}: {kind} {spec.name!r} axis {axis} is {got}; expected {want} (shape {spec.shape}): "
                    f"graph and manifest disagree on the image size or embedding width")


def fixed_prompt_axes(graph_io: dict) -> dict:
    """Decoder axes that the spec leaves dynamic but this graph fixes (a static export): name -> size."""
    fixed = {}
    inputs, _ = graph_io["decoder"]
    for spec in io_spec.decoder_specs(16)[0]:
        shape = inputs[spec.name][1]
        for want, got in zip(spec.shape, shape):
            if isinstance(want, str) and isinstance(got, int):
                fixed[want] = got
    return fixed
