"""TensorRT engines from the bundle's ONNX graphs (tensorrt Python API, TensorRT 10).

- The decoder gets one optimization profile over the prompt axes: B in 1..max_boxes prompt sets,
  N in 1..max_points + 2 points (points plus a box's two corners), computed from the ExportConfig.
- fp16 engines set BuilderFlag.FP16 on the fp32 graph; int8 engines are built from the QDQ graph
  (explicit quantization: TensorRT reads the scales from the Q/DQ nodes; the implicit calibrator is
  deprecated in TensorRT 10 and removed in 11), with FP16 also allowed for the float islands.
- A timing cache (`timing_cache`) is read before and written after each build, so rebuilding on the
  same GPU is fast. The .engine file is a pure plan; its metadata goes into the manifest.
Engines are not portable across TensorRT versions or GPUs: build them on the target machine.
"""
from __future__ import annotations

import os
from pathlib import Path

from edgesam_runtime import io_spec
from edgesam_runtime.manifest import graph_entry

ENGINE_SETS = {"fp32": "trt_fp32", "fp16": "trt_fp16", "int8": "trt_int8"}
OPT_PROMPTS, OPT_POINTS = 1, 2  # the common call: one box (two corner points)


class TensorRTUnavailable(ImportError):
    """TensorRT (or a CUDA GPU for it) is missing where engines were asked for."""


def require_tensorrt():
    """The tensorrt module, or a clear error saying what to install and what works without it."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailable(
            "--format engine needs the TensorRT Python package and an NVIDIA GPU: `pip install tensorrt` on the "
            "target machine (engines are built where they run). ONNX graphs need neither: use --format onnx."
        ) from exc
    return trt


def decoder_profile(config, image_size: int, embed_dim: int = 256, roi: bool = False) -> dict[str, tuple[tuple, tuple, tuple]]:
    """{input name: (min, opt, max) shape} for the decoder, from the prompt limits.

    ROI-framed models pair each prompt set with its own crop's embedding, so image_embeddings follows B.
    """
    e, m = io_spec.embedding_size(image_size), io_spec.low_res_size(image_size)
    b_max, n_max = config.max_boxes, config.max_prompt_points
    b_opt, n_opt = min(OPT_PROMPTS, b_max), min(OPT_POINTS, n_max)
    embeddings = (((1, embed_dim, e, e), (b_opt, embed_dim, e, e), (b_max, embed_dim, e, e)) if roi
                  else ((1, embed_dim, e, e),) * 3)
    return {
        io_spec.IMAGE_EMBEDDINGS: embeddings,
        io_spec.POINT_COORDS: ((1, 1, 2), (b_opt, n_opt, 2), (b_max, n_max, 2)),
        io_spec.POINT_LABELS: ((1, 1), (b_opt, n_opt), (b_max, n_max)),
        io_spec.MASK_INPUT: ((1, 1, m, m), (b_opt, 1, m, m), (b_max, 1, m, m)),
        io_spec.HAS_MASK_INPUT: ((1,),) * 3,
    }


def encoder_profile(image_size: int, config=None, roi: bool = False) -> dict[str, tuple[tuple, tuple, tuple]]:
    """Batch 1; ROI-framed models encode up to max_boxes crops per call."""
    one = (1, 3, image_size, image_size)
    if not roi:
        return {io_spec.ENCODER_INPUT: (one, one, one)}
    b_max = config.max_boxes
    return {io_spec.ENCODER_INPUT: (one, (min(OPT_PROMPTS, b_max), 3, image_size, image_size),
                                    (b_max, 3, image_size, image_size))}


def engine_flags(precision: str) -> list[str]:
    """BuilderFlag names for a graph set: int8 (QDQ) engines may also use fp16 between the Q/DQ islands."""
    return {"fp32": [], "fp16": ["FP16"], "int8": ["INT8", "FP16"]}[precision]


def build_engine(onnx_path: Path, engine_path: Path, profile: dict, flags: list[str], workspace_gb: float,
                 timing_cache: Path | None = None) -> dict:
    """Parse `onnx_path`, build with `profile` and `flags`, write the plan; returns build metadata."""
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # from file: resolves external data beside it
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT's ONNX parser failed: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    for flag in flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    opt_profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile.items():
        opt_profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(opt_profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise RuntimeError(f"{onnx_path}: TensorRT could not build an engine (see the TensorRT log above)")
    engine_path.write_bytes(bytes(plan))
    if timing_cache:
        _write_atomic(timing_cache, bytes(config.get_timing_cache().serialize()))
    return {"tensorrt_version": trt.__version__, "flags": flags, "workspace_gb": workspace_gb,
            "profile": {k: [list(s) for s in v] for k, v in profile.items()},
            "timing_cache": str(timing_cache) if timing_cache else None}


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def gpu_info() -> dict:
    """GPU name and compute capability for the manifest (engines only run on matching GPUs)."""
    try:
        import torch

        if torch.cuda.is_available():
            return {"gpu": torch.cuda.get_device_name(0),
                    "compute_capability": ".".join(map(str, torch.cuda.get_device_capability(0)))}
    except Exception:
        pass
    return {"gpu": None, "compute_capability": None}


def build_bundle_engines(bundle: Path, config, manifest: dict, log) -> None:
    """Add a trt_<precision> graph set for each precision whose ONNX graphs the bundle holds."""
    require_tensorrt()
    size = manifest["model"]["image_size"]
    roi = manifest["model"].get("framing", {}).get("mode") == "roi"
    profiles = {"encoder": encoder_profile(size, config, roi),
                "decoder": decoder_profile(config, size, manifest["model"]["embed_dim"], roi)}
    cache = Path(config.timing_cache) if config.timing_cache else None
    for precision in config.precisions:
        graph_set = ENGINE_SETS[precision]
        # fp16 engines are built from the fp32 graphs (TensorRT picks fp16 kernels per layer itself).
        source = manifest["graphs"]["fp32" if precision == "fp16" else precision]
        entry = {}
        for part in ("encoder", "decoder"):
            onnx_file = source[part]["file"]
            engine_file = f"{part}.{precision}.engine"  # the entry's precision says what the part runs in
            part_precision = source[part]["precision"] if precision == "int8" else precision
            log(f"building TensorRT {precision} {part} engine from {onnx_file}")
            meta = build_engine(bundle / onnx_file, bundle / engine_file, profiles[part], engine_flags(part_precision),
                                config.workspace_gb, cache)
            entry[part] = graph_entry(bundle, engine_file, "tensorrt", part_precision,
                                      tensorrt={**meta, **gpu_info(), "source_onnx": onnx_file})
        manifest["graphs"][graph_set] = entry
