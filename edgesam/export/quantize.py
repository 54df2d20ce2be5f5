"""INT8 for ONNX Runtime: static quantization in QDQ format (calibrated), or dynamic quantization of
the MatMuls (no calibration); `int8_mode` chooses, with configurable float islands either way.

QDQ (QuantizeLinear/DequantizeLinear pairs around the quantized ops) is what ONNX Runtime fuses
into integer kernels, and what TensorRT consumes as explicit quantization (its implicit INT8
calibrator is deprecated in TensorRT 10 and gone in 11), so one graph serves both.
Which nodes stay float decides speed and accuracy: only `int8_op_types` are quantized, and of
those, nodes of `int8_exclude_op_types` or whose name contains an `int8_exclude_nodes` pattern stay
float. The decoder stays float unless `int8_decoder` (it is ~1 % of the compute).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static,
)
from onnxruntime.quantization.calibrate import TensorsData, create_calibrator, save_tensors_data
from onnxruntime.quantization.shape_inference import quant_pre_process

from edgesam.export.calibration import (
    ImageCalibrationReader, cache_dir, cache_key, calibration_digest, stream_minmax_ranges,
)
from edgesam_runtime.files import sha256_file
from edgesam_runtime.threads import no_spinning

METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
           "percentile": CalibrationMethod.Percentile}
QTYPES = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}


def excluded_nodes(model: onnx.ModelProto, op_types, exclude_op_types, exclude_patterns,
                   matmul_const_only: bool = False) -> list[str]:
    """Names of the nodes kept in float: excluded op types, quantizable nodes matching a pattern, and
    with `matmul_const_only` the MatMuls of two activations (attention; ORT's static quantizer ignores
    its own MatMulConstBOnly option, so it is done here by name)."""
    inits = {t.name for t in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node.op_type in exclude_op_types:
            out.append(node.name)
        elif node.op_type in op_types and any(p in node.name for p in exclude_patterns):
            out.append(node.name)
        elif matmul_const_only and node.op_type == "MatMul" and not inits & set(node.input):
            out.append(node.name)
    return out


def settings(config) -> dict:
    """Everything about the quantization that changes the result (recorded, and part of the cache key)."""
    return {
        "format": "QDQ", "method": config.calib_method, "per_channel": config.int8_per_channel,
        "reduce_range": config.int8_reduce_range, "activation_type": config.activation_type,
        "activation_symmetric": config.activation_type == "int8", "weight_type": "int8", "weight_symmetric": True,
        "op_types": list(config.int8_op_types), "excluded_op_types": list(config.int8_exclude_op_types),
        "excluded_node_patterns": list(config.int8_exclude_nodes), "matmul_const_only": config.int8_matmul_const_only,
        "preprocess": config.int8_preprocess,
    }


def pre_process(src: Path, dst: Path, log) -> str:
    """Shape inference + graph optimization before quantization; returns what was done."""
    try:
        # ONNX shape inference suffices: the encoder is static; ORT's symbolic pass fails on SAM's rel-pos code.
        quant_pre_process(str(src), str(dst), skip_symbolic_shape=True)
        return "quant_pre_process"
    except Exception as exc:  # symbolic shape inference is best-effort: quantize the plain graph instead
        log(f"quant_pre_process failed ({type(exc).__name__}: {exc}); quantizing the graph as exported")
        shutil.copyfile(src, dst)
        return f"skipped ({type(exc).__name__})"


def quantize_graph(src: Path, dst: Path, reader: CalibrationDataReader, config, calib_sha: str, log) -> dict:
    """Quantize one graph; returns {excluded_nodes, quantized counts, cache, preprocess}."""
    opts = settings(config)
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".quant-") as work:
        prepared = Path(work) / "prepared.onnx"
        done = pre_process(src, prepared, log) if config.int8_preprocess else "off"
        model = onnx.load(str(prepared))
        excluded = excluded_nodes(model, config.int8_op_types, config.int8_exclude_op_types, config.int8_exclude_nodes,
                                  config.int8_matmul_const_only)
        # Ranges depend only on the graph, the images, the method and which op types are calibrated,
        # so variants of the other settings (per-channel, exclusions, symmetry) share one calibration.
        key = cache_key(sha256_file(prepared), calib_sha, {k: opts[k] for k in ("method", "op_types")})
        cached = cache_dir(config.calib_cache) / f"{key}.json"
        hit = cached.is_file()
        ranges = cached if hit else Path(work) / "ranges.json"
        if not hit:
            calibrate(prepared, reader, config, Path(work), ranges, log)
        quantize_static(
            str(prepared), str(dst), calibration_data_reader=None,
            quant_format=QuantFormat.QDQ, op_types_to_quantize=list(config.int8_op_types),
            per_channel=config.int8_per_channel, reduce_range=config.int8_reduce_range,
            activation_type=QTYPES[config.activation_type], weight_type=QuantType.QInt8,
            nodes_to_exclude=excluded, calibrate_method=METHODS[config.calib_method],
            extra_options={"ActivationSymmetric": config.activation_type == "int8", "WeightSymmetric": True},
            calibration_cache_path=str(ranges),
        )
        if not hit:
            _store_cache(ranges, cached, log)
    return {"excluded_nodes": excluded, "preprocess": done, "cache": {"key": key, "hit": hit, "path": str(cached)},
            **count_qdq(onnx.load(str(dst), load_external_data=False))}


def calibrate(prepared: Path, reader: CalibrationDataReader, config, work: Path, ranges: Path, log=print) -> None:
    """Activation ranges over the calibration images, saved in onnxruntime's calibration-cache format.

    MinMax (the default) streams: one ordinary inference's memory whatever the number of images
    (`calibration.stream_minmax_ranges`). The histogram methods (entropy, percentile) need every
    calibrated tensor of an image at once, so they feed onnxruntime's histogram collector one image at
    a time: memory does not grow with the number of images, but one vit_b image at 1024 px still
    needs over 11 GB.
    """
    if config.calib_method == "minmax":
        data = stream_minmax_ranges(prepared, config.int8_op_types, reader, work, log)
    else:
        data = _histogram_ranges(prepared, reader, config, work)
    save_tensors_data(data, ranges)


def _histogram_ranges(prepared: Path, reader: CalibrationDataReader, config, work: Path):
    calibrator = create_calibrator(prepared, list(config.int8_op_types), augmented_model_path=str(work / "augmented.onnx"),
                                   calibrate_method=METHODS[config.calib_method])
    calibrator.infer_session = None  # replaced below: never hold two copies of the weights

    opts = no_spinning(ort.SessionOptions())
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # tensor names must survive
    opts.enable_cpu_mem_arena, opts.enable_mem_pattern = False, False
    calibrator.infer_session = ort.InferenceSession(str(work / "augmented.onnx"), opts, providers=["CPUExecutionProvider"])
    while (feeds := reader.get_next()) is not None:
        # One image per collect_data call: the collector folds its tensors into histograms, and the
        # tensors are dropped before the next image (the calibrator otherwise keeps every image's).
        calibrator.collect_data(_OneItem(feeds))
        calibrator.clear_collected_data()
    data = calibrator.compute_data()
    if not isinstance(data, TensorsData):
        raise TypeError(f"calibration returned {type(data).__name__}, expected TensorsData")
    return data


class _OneItem(CalibrationDataReader):
    def __init__(self, feeds: dict):
        self._feeds = feeds

    def get_next(self):
        feeds, self._feeds = self._feeds, None
        return feeds


def _store_cache(ranges: Path, cached: Path, log) -> None:
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
        shutil.copyfile(ranges, tmp)
        os.replace(tmp, cached)
    except OSError as exc:  # a read-only home is no reason to fail the export
        log(f"calibration cache not written ({exc})")


def count_qdq(model: onnx.ModelProto) -> dict:
    ops = [n.op_type for n in model.graph.node]
    return {"quantize_linear": ops.count("QuantizeLinear"), "dequantize_linear": ops.count("DequantizeLinear")}


def quantized_nodes(model: onnx.ModelProto, op_types) -> list[str]:
    """Nodes of `op_types` whose inputs come from DequantizeLinear (i.e. that run in integer)."""
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    return [n.name for n in model.graph.node
            if n.op_type in op_types and any(producers.get(i) == "DequantizeLinear" for i in n.input)]


class DecoderCalibrationReader(CalibrationDataReader):
    """Decoder inputs for calibration: each image's fp32 embeddings with a box and a point prompt."""

    def __init__(self, encoder: Path, images, image_size: int):
        from edgesam.export.checks import cpu_session, decoder_feeds

        self._feeds = []
        sess = cpu_session(encoder)
        reader = ImageCalibrationReader(images, image_size)
        s = float(image_size)
        coords = np.array([[[0.3 * s, 0.3 * s], [0.7 * s, 0.7 * s]], [[0.5 * s, 0.5 * s], [0, 0]]], np.float32)
        labels = np.array([[2, 3], [1, -1]], np.float32)
        while (item := reader.get_next()) is not None:
            emb = sess.run(None, item)[0]
            self._feeds.append(decoder_feeds(emb, coords, labels))
        self._iter = iter(self._feeds)

    def get_next(self):
        return next(self._iter, None)


def dynamic_settings(config) -> dict:
    """What changes a dynamic int8 graph (recorded in the manifest)."""
    return {
        "mode": "dynamic", "format": "QOperator (DynamicQuantizeLinear + MatMulInteger)",
        "per_channel": config.int8_per_channel, "reduce_range": config.int8_reduce_range, "weight_type": "int8",
        "activation_type": "uint8, scale and zero point computed per call", "op_types": ["MatMul"],
        "matmul_const_only": config.int8_matmul_const_only, "excluded_node_patterns": list(config.int8_exclude_nodes),
        "preprocess": "shape inference only (a Gemm fusion would hide the MatMuls from the dynamic quantizer)",
    }


def quantize_dynamic_graph(src: Path, dst: Path, config, log) -> dict:
    """Dynamic int8: MatMul weights stored in int8, activations quantized per call; no calibration.

    Only MatMuls are quantized (ONNX Runtime has no dynamic Gemm), so the graph is prepared with shape
    inference alone: the optimizer's MatMul+Add -> Gemm fusion would leave nothing to quantize.
    """
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".quant-") as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True, skip_optimization=True)
        model = onnx.load(str(prepared), load_external_data=False)
        excluded = excluded_nodes(model, ("MatMul",), (), config.int8_exclude_nodes)  # only MatMuls are candidates
        quantize_dynamic(str(prepared), str(dst), op_types_to_quantize=["MatMul"], per_channel=config.int8_per_channel,
                         reduce_range=config.int8_reduce_range, weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
                         extra_options={"MatMulConstBOnly": config.int8_matmul_const_only})
    ops = [n.op_type for n in onnx.load(str(dst), load_external_data=False).graph.node]
    counts = {"matmul_integer": ops.count("MatMulInteger") + ops.count("DynamicQuantizeMatMul"),
              "dynamic_quantize_linear": ops.count("DynamicQuantizeLinear")}
    log(f"dynamic int8: {counts['matmul_integer']} integer MatMuls, {len(excluded)} nodes kept in float")
    return {"excluded_nodes": excluded, "preprocess": "shape inference", "cache": None, **counts}


def quantize_bundle_graphs(bundle: Path, config, images, image_size: int, log) -> dict:
    """encoder.int8.onnx (and decoder.int8.onnx if asked) in `bundle`; returns the manifest parts."""
    if config.onnx_int8_mode == "dynamic":
        return _dynamic_bundle_graphs(bundle, config, log)
    calib_sha = calibration_digest(images)
    enc = quantize_graph(bundle / "encoder.onnx", bundle / "encoder.int8.onnx",
                         ImageCalibrationReader(images, image_size), config, calib_sha, log)
    log(f"encoder: {enc['quantize_linear']} QuantizeLinear, {len(enc['excluded_nodes'])} nodes kept in float")
    if config.int8_decoder:
        dec = quantize_graph(bundle / "decoder.onnx", bundle / "decoder.int8.onnx",
                             DecoderCalibrationReader(bundle / "encoder.onnx", images, image_size), config,
                             calib_sha, log)
        decoder = {"file": "decoder.int8.onnx", "precision": "int8", "excluded_nodes": dec["excluded_nodes"]}
    else:
        dec, decoder = None, {"file": "decoder.onnx", "precision": "fp32", "excluded_nodes": []}
    root = Path(images[0]).parent
    quant = {
        **settings(config),
        "encoder": {k: v for k, v in enc.items() if k != "excluded_nodes"},
        "decoder": "fp32 (not quantized)" if dec is None else {k: v for k, v in dec.items() if k != "excluded_nodes"},
        "excluded_nodes": {"encoder": enc["excluded_nodes"], "decoder": [] if dec is None else dec["excluded_nodes"]},
        "calibration": {"count": len(images), "sha256": calib_sha, "source": str(_common_root(images) or root),
                        "files": [Path(p).name for p in images], "preprocess": "edgesam_runtime.geometry.preprocess",
                        "image_size": image_size},
    }
    return {"encoder": {"file": "encoder.int8.onnx", "precision": "int8", "excluded_nodes": enc["excluded_nodes"]},
            "decoder": decoder, "quantization": quant}


def _dynamic_bundle_graphs(bundle: Path, config, log) -> dict:
    enc = quantize_dynamic_graph(bundle / "encoder.onnx", bundle / "encoder.int8.onnx", config, log)
    decoder = {"file": "decoder.onnx", "precision": "fp32", "excluded_nodes": []}
    if config.int8_decoder:
        dec = quantize_dynamic_graph(bundle / "decoder.onnx", bundle / "decoder.int8.onnx", config, log)
        decoder = {"file": "decoder.int8.onnx", "precision": "int8", "excluded_nodes": dec["excluded_nodes"]}
    quant = {
        **dynamic_settings(config),
        "encoder": {k: v for k, v in enc.items() if k != "excluded_nodes"},
        "decoder": "fp32 (not quantized)" if not config.int8_decoder else "dynamic int8",
        "excluded_nodes": {"encoder": enc["excluded_nodes"], "decoder": decoder["excluded_nodes"]},
        "calibration": None,  # dynamic: activation ranges come from each call's own tensor
    }
    return {"encoder": {"file": "encoder.int8.onnx", "precision": "int8", "excluded_nodes": enc["excluded_nodes"]},
            "decoder": decoder, "quantization": quant}


def _common_root(images) -> Path | None:
    try:
        return Path(os.path.commonpath([str(Path(p).resolve()) for p in images]))
    except ValueError:
        return None

