"""Calibration images for INT8: finding them, feeding them, and caching the ranges they give.

The reader feeds the encoder exactly what inference feeds it: `edgesam_runtime.geometry.preprocess`
(resize longest side, normalize, pad). Images are found recursively under the calibration folder;
folders named like label folders (`masks`, `labels`, ...) are skipped so a dataset root can serve.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader
from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData
from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

from edgesam_runtime import geometry, io_spec
from edgesam.data import read_image
from edgesam.data.io import IMAGE_EXTENSIONS
from edgesam.export import config as export_config
from edgesam_runtime.threads import no_spinning

LABEL_FOLDERS = {"masks", "mask", "labels", "label", "annotations", "gt"}
CACHE_ENV = "EDGESAM_CACHE"


class CalibrationError(ValueError):
    """No usable calibration data: INT8 export stops rather than calibrate on nothing."""


def find_images(root: Path) -> list[Path]:
    """Image files under `root` (recursive, sorted), skipping hidden files and label folders."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d.lower() not in LABEL_FOLDERS and not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames)
                if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    return out


def resolve_calibration_images(calib_data, max_images: int) -> list[Path]:
    """The calibration images to use: `calib_data` (or the repo's `calibration/` set), at most
    `max_images` of them spread evenly over the sorted list. Raises CalibrationError if none."""
    root = Path(calib_data) if calib_data else export_config.default_calibration_dir()
    hint = "INT8 needs calibration images from your line: pass --calib-data DIR (see calibration/README.md)"
    if not root.is_dir():
        what = "calib_data" if calib_data else "the default calibration set"
        raise CalibrationError(f"{root}: {what} is not a folder; {hint}")
    images = find_images(root)
    if not images:
        raise CalibrationError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)}) found; {hint}")
    if len(images) > max_images:
        picks = np.linspace(0, len(images) - 1, max_images).round().astype(int)
        images = [images[i] for i in picks]
    return images


class ImageCalibrationReader(CalibrationDataReader):
    """Feeds `{io_spec.ENCODER_INPUT: preprocessed tensor}` for each calibration image, once."""

    def __init__(self, images: list[Path], image_size: int):
        self.images, self.image_size = list(images), image_size
        self._next = 0

    def get_next(self):
        if self._next >= len(self.images):
            return None
        path = self.images[self._next]
        self._next += 1
        x, _, _ = geometry.preprocess(read_image(path), self.image_size)
        return {io_spec.ENCODER_INPUT: x}

    def __len__(self):
        return len(self.images)

    def rewind(self):
        self._next = 0


def calibration_digest(images: list[Path]) -> str:
    """sha256 over the calibration images' contents (names excluded: renaming changes nothing)."""
    digest = hashlib.sha256()
    for path in images:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def cache_dir(config_dir: str | None) -> Path:
    if config_dir:
        return Path(config_dir)
    base = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "edgesam"
    return Path(base) / "calibration"


def cache_key(model_sha256: str, images_sha256: str, settings: dict) -> str:
    """Ranges depend on the graph, the images and how they were collected: all three key the cache."""
    blob = json.dumps({"model": model_sha256, "images": images_sha256, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


# --- activation ranges, streamed one image at a time ---------------------------------------------
# ONNX Runtime's MinMax calibrator reduces each calibrated tensor in the graph too, but in its default
# execution order the reductions run late, so the big tensors (12 x 4096 x 4096 attention maps of
# vit_b's global blocks at 1024 px) stay alive until then: measured >11 GB for a single image. Here
# each tensor's ReduceMin/ReduceMax sit right after the node that makes it and the session runs in
# priority order, so a reduction runs as soon as its input exists and the tensor is freed as in a
# plain inference. Per image only two scalars per tensor come back, merged into running minima and
# maxima: peak memory is one inference of the graph, whatever the number of images.
RANGE_SUFFIXES = ("__edgesam_min", "__edgesam_max")


def calibration_tensors(model, op_types) -> list[str]:
    """Float activations entering or leaving nodes of `op_types` (weights excluded), in graph order:
    the tensors ONNX Runtime's quantizer asks ranges for."""
    from onnx import TensorProto

    infos = {vi.name: vi for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)}
    weights = {t.name for t in model.graph.initializer}
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16)
    seen, out = set(), []
    for node in model.graph.node:
        if node.op_type not in op_types:
            continue
        for name in list(node.input) + list(node.output):
            info = infos.get(name)
            if (name and name not in seen and name not in weights and info is not None
                    and info.type.tensor_type.elem_type in floats):
                seen.add(name)
                out.append(name)
    return out


def add_range_outputs(model, tensors) -> dict[str, tuple[str, str]]:
    """Add ReduceMin/ReduceMax (all axes, scalar) of each tensor right after the node that makes it,
    and make the reductions the graph's only outputs. Returns {tensor: (min output, max output)}."""
    from onnx import helper

    infos = {vi.name: vi for vi in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)}
    wanted = set(tensors)
    outputs, nodes = {}, []

    def reductions(name):
        pair = tuple(name + s for s in RANGE_SUFFIXES)
        outputs[name] = pair
        return [helper.make_node(op, [name], [out], keepdims=0, name=out) for op, out in zip(("ReduceMin", "ReduceMax"), pair)]

    for graph_input in model.graph.input:
        if graph_input.name in wanted:
            nodes += reductions(graph_input.name)
    for node in model.graph.node:
        nodes.append(node)
        for name in node.output:
            if name in wanted and name not in outputs:
                nodes += reductions(name)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    del model.graph.output[:]
    model.graph.output.extend(helper.make_tensor_value_info(out, infos[t].type.tensor_type.elem_type, [])
                              for t, pair in outputs.items() for out in pair)
    return outputs


def stream_minmax_ranges(model_path: Path, op_types, reader: CalibrationDataReader, work: Path, log=print):
    """MinMax ranges of the calibration tensors over every image the reader yields (see above).

    Returns onnxruntime's `TensorsData`, the form `quantize_static` reads from a calibration cache.
    """
    model = load_model_with_shape_infer(Path(model_path))
    tensors = calibration_tensors(model, op_types)
    if not tensors:
        raise CalibrationError(f"{model_path}: no float activations feed {sorted(op_types)} nodes; nothing to calibrate")
    pairs = add_range_outputs(model, tensors)
    augmented = Path(work) / "ranges_augmented.onnx"
    _save_model(model, augmented)
    del model  # the session below holds its own copy of the weights
    names = [out for pair in pairs.values() for out in pair]
    lowest, highest, count = {}, {}, 0
    with freed_memory_returned():
        session = ort.InferenceSession(str(augmented), _lean_session_options(), providers=["CPUExecutionProvider"])
        while (feeds := reader.get_next()) is not None:
            values = dict(zip(names, session.run(names, feeds)))
            for tensor, (lo_name, hi_name) in pairs.items():
                lo, hi = float(values[lo_name]), float(values[hi_name])
                lowest[tensor] = float(np.fmin(lowest.get(tensor, lo), lo))  # fmin/fmax skip NaN
                highest[tensor] = float(np.fmax(highest.get(tensor, hi), hi))
            count += 1
            log(f"calibration image {count}: ranges of {len(pairs)} tensors updated")
        del session
    if count == 0:
        raise CalibrationError("calibration reader yielded no images")
    return TensorsData(CalibrationMethod.MinMax, {
        t: TensorData(lowest=np.array([lowest[t]], np.float32), highest=np.array([highest[t]], np.float32))
        for t in pairs})


def _lean_session_options():
    """Session options for the least memory per image, measured on vit_b at 1024 px (whose global
    attention blocks each make 805 MB tensors): a plain run peaks at ~3.3 GB of activations."""
    opts = no_spinning(ort.SessionOptions())
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # calibrate the graph as it is
    # Run each reduction as soon as its input exists (ONNX Runtime's default order measured >11 GB for
    # one vit_b image: the big tensors stayed alive until late reductions).
    opts.execution_order = ort.ExecutionOrder.PRIORITY_BASED
    opts.enable_cpu_mem_arena, opts.enable_mem_pattern = False, False
    # The planner's buffer reuse keeps a buffer allocated from its first tensor to its last, holding
    # attention buffers of one global block through the windowed blocks to the next (~0.5 GB more).
    opts.enable_mem_reuse = False
    opts.log_severity_level = 3
    return opts


@contextmanager
def freed_memory_returned():
    """While calibrating, glibc hands every allocation of 64 KiB or more back to the system when it is
    freed (mmap), and returns what the loaded model left behind: otherwise the many tens-of-MB
    activations of each block stay in the heap as fragments (measured ~1.2 GB of vit_b's peak).
    A no-op where the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        yield
        return
    libc.malloc_trim(0)
    libc.mallopt(M_MMAP_THRESHOLD, 64 * 1024)
    try:
        yield
    finally:
        libc.mallopt(M_MMAP_THRESHOLD, GLIBC_DEFAULT_MMAP_THRESHOLD)
        libc.malloc_trim(0)


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number
GLIBC_DEFAULT_MMAP_THRESHOLD = 128 * 1024


def _glibc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def _save_model(model, path: Path) -> None:
    """Save, with the weights beside the graph when protobuf's 2 GB limit would be exceeded."""
    import onnx

    large = model.ByteSize() > 1_800_000_000
    onnx.save_model(model, str(path), save_as_external_data=large, all_tensors_to_one_file=True,
                    location=path.name + ".data" if large else None)
