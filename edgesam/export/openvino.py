"""OpenVINO IR graph sets: ov_fp32, ov_bf16 and ov_int8, built from the bundle's fp32 ONNX graphs.

- ov_fp32: the ONNX graphs converted to IR, weights in fp32, run with inference precision f32.
- ov_bf16: weights stored in fp16 (half the size; the CPU plugin widens them), run with inference
  precision bf16. Only CPUs with AVX512_BF16 or AMX-BF16 have bf16 math; elsewhere OpenVINO runs
  the set in fp32, and the parity figures say which precision actually ran at export.
- ov_int8: NNCF post-training quantization of the encoder, its float parts run in bf16 where the CPU
  has bf16 math and in fp32 elsewhere (transformer model type:
  quantizers placed for MatMul-heavy models; mixed preset: symmetric weights, asymmetric
  activations; overflow fix on, i.e. 7-bit weights, so products cannot saturate on CPUs without VNNI),
  calibrated on the same images as the ONNX int8 set. Ignored scopes: the op types of
  `openvino_int8_ignored_types` (LayerNorm's MVN and Softmax: normalisation and softmax lose the most
  in 8 bits), the nodes matching `int8_exclude_nodes` (the neck and the patch embedding), and with
  `openvino_int8_attention_float` (default) or `int8_matmul_const_only` the attention MatMuls of two
  activations (on vit_b at 1024 px: calibration peak 3.5 GB instead of 4.3, and faster: int8 attention
  maps cost more than they save). SmoothQuant and bias correction are off by default
  (`openvino_int8_smooth_quant`, `openvino_int8_bias_correction`; measured in
  benchmarks/cpu_backends/results/nncf_knobs*.md). With `openvino_int8_max_drop`
  NNCF's accuracy control reverts the most harmful quantizers to float until the mean embedding
  agreement with fp32 on the calibration images drops by at most that much. The decoder stays fp32
  unless `int8_decoder`.
Every set is checked against the PyTorch model at export like the ONNX sets (`checks.measure` run
through OpenVINO), with the tolerance of its precision.
"""
from __future__ import annotations

import contextlib
import logging
import re
import time
from pathlib import Path

import numpy as np

from edgesam.data import read_image
from edgesam_runtime import geometry, io_spec
from edgesam_runtime.backends.ov import OvGraph
from edgesam_runtime.envinfo import cpu_features, package_version
from edgesam_runtime.manifest import graph_entry
from edgesam_runtime.files import sha256_file

OV_SETS = {"fp32": "ov_fp32", "bf16": "ov_bf16", "int8": "ov_int8"}
# int8 sets: the float islands (normalisation, softmax, the neck, the decoder) in bf16 where the CPU has
# bf16 math (OpenVINO runs them in fp32 elsewhere): the fastest accurate vit_b encoder on such CPUs
# (benchmarks/cpu_backends); the export check below records the precision they actually ran in.
INFERENCE_PRECISION = {"fp32": "fp32", "bf16": "bf16", "int8": "bf16"}


class OpenVINOUnavailable(ImportError):
    """OpenVINO IR was asked for where the openvino (or nncf) package is missing."""


def require_openvino(int8: bool):
    try:
        import openvino
        if int8:
            import nncf  # noqa: F401
    except ImportError as exc:
        raise OpenVINOUnavailable(f"--format openvino needs the openvino{' and nncf' if int8 else ''} packages ({exc}): "
                                  "pip install 'edgesam[openvino]'") from exc
    return openvino


# --- checks through OpenVINO ---------------------------------------------------------------------
class OvCheckSession:
    """`checks.measure` expects ONNX Runtime's session.run(None, feeds) -> [outputs]; this is that
    call on a graph compiled by OpenVINO (no compiled-model cache: staging paths are temporary)."""

    def __init__(self, path: Path, precision: str):
        self.graph = OvGraph(path, precision, threads=None, use_cache=False)

    def run(self, _names, feeds: dict) -> list:
        out = self.graph.run(feeds)
        return [out[name] for name in self.graph.output_names]


def check_set(tmp: Path, name: str, encoder: str, decoder: str, precisions: tuple[str, str], config, manifest,
              ref, log) -> None:
    from edgesam.export import checks

    asked = {tmp / encoder: precisions[0], tmp / decoder: precisions[1]}
    opened = {}

    def session(path):  # kept, so the encoder's executed precision is read without compiling it again
        opened[path] = OvCheckSession(path, asked[path])
        return opened[path]

    figures = checks.measure(tmp / encoder, tmp / decoder, ref, session=session)
    executed = opened[tmp / encoder].graph.execution_precision
    figures["executed_as"] = executed
    manifest["checks"][name] = figures
    log(f"{name}: parity embed max|d| {figures['embed_max_abs']:.3g}, logits max|d| {figures['logits_max_abs']:.3g}, "
        f"{checks.mask_iou_text(figures)} (encoder ran in {executed})")
    if config.check_parity:
        tolerance = config.tolerances[name.split("_", 1)[1]]
        checks.enforce(figures, tolerance, name, (encoder, decoder))


# --- conversion ----------------------------------------------------------------------------------
def save_ir(model, path: Path, compress_to_fp16: bool) -> list[str]:
    """Write <path>.xml and .bin; return both file names (graph first, weights second)."""
    import openvino as ov

    ov.save_model(model, str(path), compress_to_fp16=compress_to_fp16)
    return [path.name, path.with_suffix(".bin").name]


def ir_entry(bundle: Path, files: list[str], precision: str, inference_precision: str, **extra) -> dict:
    import openvino as ov

    entry = graph_entry(bundle, files[0], "openvino", precision, **extra)
    entry["external_data"] = [{"file": f, "sha256": sha256_file(bundle / f), "bytes": (bundle / f).stat().st_size}
                              for f in files[1:]]
    entry["openvino"] = {"version": ov.get_version(), "inference_precision": inference_precision}
    return entry


def export_openvino_sets(tmp: Path, config, manifest: dict, ref, calib, arch, log) -> None:
    """The OpenVINO graph sets asked for by `config.openvino_precisions`, each checked, into `manifest`."""
    import openvino as ov

    precisions = config.openvino_precisions
    require_openvino("int8" in precisions)
    log(f"converting to OpenVINO IR (OpenVINO {ov.get_version()})")
    encoder, decoder = (ov.convert_model(str(tmp / f"{part}.onnx")) for part in ("encoder", "decoder"))
    dec_fp32 = None
    if "fp32" in precisions or "int8" in precisions:
        dec_fp32 = save_ir(decoder, tmp / "decoder.ov_fp32.xml", compress_to_fp16=False)
    if "fp32" in precisions:
        enc = save_ir(encoder, tmp / "encoder.ov_fp32.xml", compress_to_fp16=False)
        _add_set(tmp, "fp32", enc, dec_fp32, ("fp32", "fp32"), config, manifest, ref, log)
    if "bf16" in precisions:
        enc = save_ir(encoder, tmp / "encoder.ov_bf16.xml", compress_to_fp16=True)
        dec = save_ir(decoder, tmp / "decoder.ov_bf16.xml", compress_to_fp16=True)
        _add_set(tmp, "bf16", enc, dec, ("bf16", "bf16"), config, manifest, ref, log)
    if "int8" in precisions:
        quantized, record = quantize_encoder(encoder, tmp / "encoder.onnx", config, calib, arch.image_size, log)
        enc = save_ir(quantized, tmp / "encoder.ov_int8.xml", compress_to_fp16=False)
        dec = dec_fp32
        if config.int8_decoder:
            dec_model, record["decoder"] = quantize_decoder(decoder, tmp / "encoder.onnx", config, calib, arch.image_size)
            dec = save_ir(dec_model, tmp / "decoder.ov_int8.xml", compress_to_fp16=False)
        _add_set(tmp, "int8", enc, dec, (INFERENCE_PRECISION["int8"],) * 2, config, manifest, ref, log,
                 decoder_precision="int8" if config.int8_decoder else "fp32")
        manifest["quantization"][OV_SETS["int8"]] = record


def _add_set(tmp, precision, enc, dec, run_as, config, manifest, ref, log, decoder_precision=None) -> None:
    name = OV_SETS[precision]
    check_set(tmp, name, enc[0], dec[0], run_as, config, manifest, ref, log)
    manifest["graphs"][name] = {
        "encoder": ir_entry(tmp, enc, precision, INFERENCE_PRECISION[precision]),
        "decoder": ir_entry(tmp, dec, decoder_precision or precision, INFERENCE_PRECISION[precision]),
    }


# --- int8 with NNCF ------------------------------------------------------------------------------
@contextlib.contextmanager
def quiet_nncf():
    """NNCF's warnings and errors only: at INFO it prints a line per node it leaves in float (hundreds
    for vit_b), which buried export's own lines; the manifest records what was quantized instead."""
    import nncf

    logger = logging.getLogger("nncf")
    level = logger.level
    nncf.set_log_level(logging.WARNING)
    try:
        yield
    finally:
        nncf.set_log_level(level)


def attention_matmuls(model) -> list[str]:
    """Friendly names of MatMuls whose two inputs are both activations (attention scores and mix)."""
    names = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        if all(_is_activation(op.input_value(i).get_node()) for i in range(2)):
            names.append(op.get_friendly_name())
    return names


def attention_float(config) -> bool:
    """The OpenVINO int8 set keeps its attention MatMuls float: its own default, or the ONNX setting asking it."""
    return config.openvino_int8_attention_float or config.int8_matmul_const_only


def _is_activation(node) -> bool:
    """False for weights: constants, possibly behind the Convert/Reshape/Transpose a converter adds."""
    while node.get_type_name() in ("Convert", "Reshape", "Transpose", "Unsqueeze"):
        node = node.input_value(0).get_node()
    return node.get_type_name() != "Constant"


def ignored_scope(model, config) -> tuple[object, dict]:
    """(nncf.IgnoredScope, its manifest record) from the config's float islands."""
    import nncf

    patterns = [f".*{re.escape(p)}.*" for p in config.int8_exclude_nodes]
    names = attention_matmuls(model) if attention_float(config) else []
    types = list(config.openvino_int8_ignored_types)
    scope = nncf.IgnoredScope(names=names, patterns=patterns, types=types, validate=False)
    return scope, {"types": types, "patterns": patterns, "names": names,
                   "why": "LayerNorm (MVN) and Softmax lose the most in 8 bits; the neck and patch embedding set the "
                          "embedding's accuracy" + ("; attention MatMuls kept float" if names else "")}


class _ImageDataset:
    """Calibration images, preprocessed when iterated (NNCF iterates several times; holding every
    1024 px tensor in memory would cost 12 MB per image)."""

    def __init__(self, images, image_size: int):
        self.images, self.image_size = list(images), image_size

    def __iter__(self):
        for path in self.images:
            yield geometry.preprocess(read_image(path), self.image_size)[0]

    def __len__(self):
        return len(self.images)


def quantize_encoder(model, onnx_path: Path, config, images, image_size: int, log):
    """NNCF post-training quantization of the encoder; returns (quantized ov.Model, manifest record)."""
    import nncf

    from edgesam.export.calibration import calibration_digest

    scope, scope_record = ignored_scope(model, config)
    dataset = nncf.Dataset(_ImageDataset(images, image_size))
    common = dict(preset=nncf.QuantizationPreset(config.openvino_int8_preset), target_device=nncf.TargetDevice.CPU,
                  subset_size=len(images), fast_bias_correction=True, model_type=nncf.ModelType.TRANSFORMER,
                  ignored_scope=scope)
    advanced = _advanced(config)
    start = time.perf_counter()
    if config.openvino_int8_max_drop is None:
        log(f"NNCF post-training quantization ({len(images)} images, preset {config.openvino_int8_preset})")
        with quiet_nncf():
            quantized = nncf.quantize(model, dataset, advanced_parameters=advanced, **common)
        control = None
    else:
        log(f"NNCF quantization with accuracy control (max drop {config.openvino_int8_max_drop} in embedding agreement)")
        validation = nncf.Dataset(_reference_pairs(onnx_path, images, image_size))
        with quiet_nncf():
            quantized = nncf.quantize_with_accuracy_control(
                model, dataset, validation, embedding_agreement, max_drop=config.openvino_int8_max_drop,
                drop_type=nncf.DropType.ABSOLUTE, advanced_quantization_parameters=advanced, **common)
        control = {"metric": "mean over calibration images of 1 - |emb - emb_fp32|_1 / |emb_fp32|_1",
                   "max_drop": config.openvino_int8_max_drop, "drop_type": "absolute",
                   "validation_images": len(images)}
    root = Path(images[0]).parent
    record = {
        "method": "nncf.quantize" if control is None else "nncf.quantize_with_accuracy_control",
        "nncf": package_version("nncf"), "model_type": "transformer", "preset": config.openvino_int8_preset,
        "target_device": "CPU", "subset_size": len(images), "fast_bias_correction": True,
        "overflow_fix": config.openvino_int8_overflow_fix, "smooth_quant": config.openvino_int8_smooth_quant,
        "bias_correction": config.openvino_int8_bias_correction,
        "attention_float": attention_float(config),
        "ignored_scope": scope_record, "accuracy_control": control,
        "calibration": {"count": len(images), "sha256": calibration_digest(images), "source": str(root),
                        "files": [Path(p).name for p in images], "preprocess": "edgesam_runtime.geometry.preprocess",
                        "image_size": image_size},
        "built_on_cpu": cpu_features(), "seconds": round(time.perf_counter() - start, 1),
        "decoder": "fp32 (not quantized)",
    }
    return quantized, record


def _advanced(config):
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters, AdvancedSmoothQuantParameters, OverflowFix,
    )

    fix = {"enable": OverflowFix.ENABLE, "first_layer": OverflowFix.FIRST_LAYER, "disable": OverflowFix.DISABLE}
    optional = {}
    if not config.openvino_int8_smooth_quant:
        optional["smooth_quant_alphas"] = AdvancedSmoothQuantParameters(matmul=-1)  # a negative alpha turns it off
    if not config.openvino_int8_bias_correction:
        optional["disable_bias_correction"] = True
    return AdvancedQuantizationParameters(overflow_fix=fix[config.openvino_int8_overflow_fix], **optional)


def quantize_decoder(model, encoder_onnx: Path, config, images, image_size: int):
    """The decoder through NNCF too (`int8_decoder`), on each image's fp32 embeddings with prompts."""
    import nncf

    from edgesam.export.quantize import DecoderCalibrationReader

    reader = DecoderCalibrationReader(encoder_onnx, images, image_size)
    feeds = list(iter(reader.get_next, None))
    with quiet_nncf():
        quantized = nncf.quantize(model, nncf.Dataset(feeds), preset=nncf.QuantizationPreset(config.openvino_int8_preset),
                                  target_device=nncf.TargetDevice.CPU, subset_size=len(feeds),
                                  model_type=nncf.ModelType.TRANSFORMER, advanced_parameters=_advanced(config))
    return quantized, {"method": "nncf.quantize", "calibration_feeds": len(feeds)}


def _reference_pairs(onnx_path: Path, images, image_size: int) -> list:
    """(input, fp32 embedding) per calibration image: what the accuracy control compares against."""
    from edgesam.export.checks import cpu_session

    session = cpu_session(onnx_path)
    return [(x, session.run(None, {io_spec.ENCODER_INPUT: x})[0]) for x in _ImageDataset(images, image_size)]


def embedding_agreement(compiled, items) -> tuple[float, list[float]]:
    """NNCF validation function: per image 1 - relative L1 error of the embedding against fp32."""
    request = compiled.create_infer_request()
    scores = []
    for x, reference in items:
        out = request.infer({0: x})[0]
        scores.append(1.0 - float(np.abs(out - reference).sum() / max(np.abs(reference).sum(), 1e-12)))
    return float(np.mean(scores)), scores
