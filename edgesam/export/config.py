"""`ExportConfig`: what `edgesam export` builds, validated on construction.

Formats: "onnx" (the fp32 ONNX graphs are always produced: every other set is built from them),
"engine" (aliases "tensorrt", "trt") and "openvino" (alias "ov": IR sets ov_fp32/ov_bf16/ov_int8).
Precisions: fp32 | fp16 | int8 | bf16 (aliases "half", "bfloat16"); fp16 applies to ONNX and
engines, bf16 to OpenVINO only. INT8 needs calibration images:
`calib_data` (None -> the repository's `calibration/` set); none found is an error, never a
silent fallback.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgesam.utils.config import Config, ConfigError, check_integer
from edgesam_runtime.schema import schema_document

FORMAT_ALIASES = {"onnx": "onnx", "engine": "engine", "tensorrt": "engine", "trt": "engine", "openvino": "openvino",
                  "ov": "openvino"}
PRECISION_ALIASES = {"fp32": "fp32", "float32": "fp32", "fp16": "fp16", "half": "fp16", "float16": "fp16",
                     "int8": "int8", "bf16": "bf16", "bfloat16": "bf16"}
PRECISIONS = ("fp32", "fp16", "int8", "bf16")
ONNX_PRECISIONS = ("fp32", "fp16", "int8")
OPENVINO_PRECISIONS = ("fp32", "bf16", "int8")
# ONNX int8 without engines: which mode pays on CPUs (benchmarks/cpu_backends measures both side by side).
INT8_MODE_AUTO = "static"
# NNCF ignored scope by op type (OpenVINO names): LayerNorm becomes MVN, and Softmax; kept in float.
DEFAULT_OPENVINO_INT8_IGNORED_TYPES = ("MVN", "SoftMax")
DECODER_STYLES = ("edgesam", "official")
CALIB_METHODS = ("minmax", "entropy", "percentile")
MIN_OPSET, MAX_OPSET = 13, 20

# Kept in float by default: normalisation, softmax and residual adds lose the
# most accuracy in 8 bits, and quantizing element-wise ops buys no speed on CPU.
DEFAULT_INT8_OP_TYPES = ("MatMul", "Conv", "Gemm")
DEFAULT_INT8_EXCLUDE_OP_TYPES = ("LayerNormalization", "Softmax", "Add")
# Node-name patterns (substring match) kept in float: the neck and patch embedding (the encoder's
# output head and input stem, which set the embedding's accuracy) and the decoder.
DEFAULT_INT8_EXCLUDE_NODES = ("/neck/", "/patch_embed/")
# FP16 keeps these op types in fp32 (overflow and precision: normalisation, softmax, reductions).
DEFAULT_FP16_KEEP_OP_TYPES = ("LayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt", "Div", "Erf")
# ... and these nodes (name patterns): the output heads, whose outputs are the answer itself.
DEFAULT_FP16_KEEP_NODES = ("/neck/", "/iou_prediction_head/", "/output_hypernetworks_mlps", "/output_upscaling/")

# Parity tolerances of each graph set against the PyTorch model (checked at export).
# embed_max_abs: largest |embedding difference| (embeddings end in a LayerNorm, so they are O(1));
# logits_max_abs: largest |low-res logit difference|; mask_iou_min: mean IoU of thresholded
# low-res masks over all prompt sets and the 4 outputs.
DEFAULT_TOLERANCES = {
    "fp32": {"embed_max_abs": 1e-3, "logits_max_abs": 1e-2, "mask_iou_min": 0.99},
    "fp16": {"embed_max_abs": 0.1, "logits_max_abs": 1.0, "mask_iou_min": 0.95},
    "int8": {"embed_max_abs": None, "logits_max_abs": None, "mask_iou_min": 0.85},
    # bf16 keeps fp32's range with an 8-bit mantissa (~4e-3 relative): absolute figures scale with the
    # weights, so only the masks are bounded, as loosely as fp16's.
    "bf16": {"embed_max_abs": None, "logits_max_abs": None, "mask_iou_min": 0.95},
}


def _tuple(value) -> tuple:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


def _canonical(values, aliases: dict, field_name: str) -> tuple[str, ...]:
    out = []
    for value in _tuple(values):
        key = str(value).lower()
        if key not in aliases:
            raise ConfigError(f"{field_name}: unknown value {value!r}; expected one of {sorted(aliases)}")
        if aliases[key] not in out:
            out.append(aliases[key])
    if not out:
        raise ConfigError(f"{field_name}: expected at least one of {sorted(set(aliases.values()))}")
    return tuple(out)


@dataclass
class ExportConfig(Config):
    WHERE = "export config"

    formats: tuple[str, ...] = ("onnx",)
    precisions: tuple[str, ...] = ("fp32",)
    opset: int = 17
    decoder_style: str = "edgesam"
    max_points: int = 16
    max_boxes: int = 64
    calib_data: str | None = None
    calib_max_images: int = 16
    calib_method: str = "minmax"
    calib_cache: str | None = None  # folder; None -> ~/.cache/edgesam/calibration
    int8_op_types: tuple[str, ...] = DEFAULT_INT8_OP_TYPES
    int8_exclude_op_types: tuple[str, ...] = DEFAULT_INT8_EXCLUDE_OP_TYPES
    int8_exclude_nodes: tuple[str, ...] = DEFAULT_INT8_EXCLUDE_NODES
    int8_decoder: bool = False  # quantize the decoder too (it stays float by default)
    int8_per_channel: bool = True
    int8_reduce_range: bool = True  # 7-bit weights: avoids u8s8 saturation on CPUs without VNNI
    # Activations: "uint8" (asymmetric; ORT's fast u8s8 path on x86) or "int8" (symmetric, zero point 0:
    # what TensorRT's explicit quantization requires). "auto": int8 when engines are built, else uint8.
    int8_activation: str = "auto"
    int8_matmul_const_only: bool = False  # True: leave the attention MatMuls (two activations) in float
    int8_preprocess: bool = True  # onnxruntime's quant_pre_process (shape inference + optimization) first
    # ONNX int8: "static" (calibrated QDQ: also TensorRT's input) or "dynamic" (int8 MatMul weights, activations
    # quantized per call, no calibration; ONNX Runtime only). "auto": static when engines are built, else INT8_MODE_AUTO.
    int8_mode: str = "auto"
    fp16_keep_op_types: tuple[str, ...] = DEFAULT_FP16_KEEP_OP_TYPES
    fp16_keep_nodes: tuple[str, ...] = DEFAULT_FP16_KEEP_NODES
    tolerances: dict = field(default_factory=lambda: {k: dict(v) for k, v in DEFAULT_TOLERANCES.items()})
    check_parity: bool = True
    external_data_threshold: int = 1_800_000_000  # bytes of weights above which ONNX data goes beside the graph
    workspace_gb: float = 4.0  # TensorRT builder workspace
    timing_cache: str | None = None  # TensorRT timing cache file (read and updated)
    openvino_int8_preset: str = "mixed"  # NNCF: symmetric weights, asymmetric activations (GELU outputs)
    openvino_int8_ignored_types: tuple[str, ...] = DEFAULT_OPENVINO_INT8_IGNORED_TYPES
    openvino_int8_max_drop: float | None = None  # NNCF accuracy control: max drop of embedding agreement
    # NNCF overflow fix: 7-bit weights, so int8 products cannot saturate on CPUs without VNNI (AVX2 line PCs,
    # where the fix measured 11.6 % -> 8.8 % relative embedding error on vit_t); "enable", "first_layer", "disable".
    openvino_int8_overflow_fix: str = "enable"
    # NNCF's SmoothQuant and bias correction, and int8 attention MatMuls (two activations: NNCF gathers
    # statistics on vit_b's 4096 x 4096 attention maps). Measured on vit_b at 1024 px (benchmarks/cpu_backends/
    # results/nncf_knobs*.md): all three on 6.7 GB calibration peak, embedding cosine 0.90-0.98 off the
    # calibration image, 1.30 s per image; all three off 3.5 GB, cosine >= 0.999, 1.10 s. On the trained vit_t
    # both steps off gave masks as close to PyTorch (IoU 0.998) with the same task mIoU. So all off by default.
    openvino_int8_smooth_quant: bool = False
    openvino_int8_bias_correction: bool = False
    openvino_int8_attention_float: bool = True  # the OpenVINO set's attention MatMuls stay float (bf16 / fp32)
    measure_backends: bool = False  # time the encoder on each installed CPU backend, for backend="auto"

    def __post_init__(self):
        self.formats = _canonical(self.formats, FORMAT_ALIASES, "formats")
        self.precisions = _canonical(self.precisions, PRECISION_ALIASES, "precisions")
        for name in ("int8_op_types", "int8_exclude_op_types", "int8_exclude_nodes", "fp16_keep_op_types",
                     "fp16_keep_nodes", "openvino_int8_ignored_types"):
            setattr(self, name, _tuple(getattr(self, name)))
        if "engine" in self.formats and "onnx" not in self.formats:
            self.formats = ("onnx",) + self.formats  # engines are built from the ONNX graphs
        if not MIN_OPSET <= int(self.opset) <= MAX_OPSET:
            raise ConfigError(f"opset: expected {MIN_OPSET}..{MAX_OPSET}, got {self.opset}")
        if self.decoder_style not in DECODER_STYLES:
            raise ConfigError(f"decoder_style: expected one of {DECODER_STYLES}, got {self.decoder_style!r}")
        if self.calib_method not in CALIB_METHODS:
            raise ConfigError(f"calib_method: expected one of {CALIB_METHODS}, got {self.calib_method!r}")
        if int(self.calib_max_images) < 1:
            raise ConfigError(f"calib_max_images: expected a positive integer, got {self.calib_max_images}")
        for name, limit in prompt_limits().items():  # checked here, not after a whole export writes the manifest
            check_integer(name, getattr(self, name), 1, limit)
        if "bf16" in self.precisions and "openvino" not in self.formats:
            raise ConfigError("precisions: bf16 graphs are OpenVINO IR; add the openvino format (--format openvino)")
        if self.openvino_int8_preset not in ("mixed", "performance"):
            raise ConfigError(f"openvino_int8_preset: expected mixed or performance, got {self.openvino_int8_preset!r}")
        if self.openvino_int8_overflow_fix not in ("enable", "first_layer", "disable"):
            raise ConfigError("openvino_int8_overflow_fix: expected enable, first_layer or disable, got "
                                    f"{self.openvino_int8_overflow_fix!r}")
        for name in ("openvino_int8_smooth_quant", "openvino_int8_bias_correction"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}: expected true or false, got {getattr(self, name)!r}")
        if self.openvino_int8_max_drop is not None and not 0 < float(self.openvino_int8_max_drop) < 1:
            raise ConfigError(f"openvino_int8_max_drop: expected a fraction in (0, 1), got {self.openvino_int8_max_drop}")
        if self.int8_mode not in ("auto", "static", "dynamic"):
            raise ConfigError(f"int8_mode: expected auto, static or dynamic, got {self.int8_mode!r}")
        if self.int8_mode == "dynamic" and "engine" in self.formats:
            raise ConfigError("int8_mode: TensorRT engines need the static (QDQ) int8 graph; use int8_mode static")
        if self.int8_activation not in ("auto", "uint8", "int8"):
            raise ConfigError(f"int8_activation: expected auto, uint8 or int8, got {self.int8_activation!r}")
        self._check_tolerances()

    def _check_tolerances(self):
        merged = {k: dict(v) for k, v in DEFAULT_TOLERANCES.items()}
        for precision, values in (self.tolerances or {}).items():
            if precision not in merged or not isinstance(values, dict):
                raise ConfigError(f"tolerances: expected {{precision: {{name: value}}}} for {PRECISIONS}, got {precision!r}")
            unknown = set(values) - set(merged[precision])
            if unknown:
                raise ConfigError(f"tolerances.{precision}: unknown {sorted(unknown)}; expected {sorted(merged[precision])}")
            merged[precision].update(values)
        self.tolerances = merged

    @property
    def activation_type(self) -> str:
        if self.int8_activation != "auto":
            return self.int8_activation
        return "int8" if "engine" in self.formats else "uint8"

    @property
    def onnx_int8_mode(self) -> str:
        if self.int8_mode != "auto":
            return self.int8_mode
        return "static" if "engine" in self.formats else INT8_MODE_AUTO

    @property
    def needs_calibration(self) -> bool:
        """Calibration images are read for static ONNX int8 and for OpenVINO int8 (NNCF)."""
        onnx_static = "int8" in self.onnx_precisions and self.onnx_int8_mode == "static"
        return onnx_static or "int8" in self.openvino_precisions

    @property
    def onnx_precisions(self) -> tuple[str, ...]:
        """ONNX graph sets to build: fp32 always (every other set is built from it), fp16/int8 when
        ONNX graphs or TensorRT engines were asked for."""
        wanted = self.precisions if {"onnx", "engine"} & set(self.formats) else ()
        return ("fp32",) + tuple(p for p in wanted if p in ONNX_PRECISIONS and p != "fp32")

    @property
    def openvino_precisions(self) -> tuple[str, ...]:
        return tuple(p for p in self.precisions if p in OPENVINO_PRECISIONS) if "openvino" in self.formats else ()

    @property
    def max_prompt_points(self) -> int:
        """Largest N the decoder must take: max_points plus a box's two corners (or one pad point)."""
        return self.max_points + 2


def default_calibration_dir() -> Path:
    """The repository's `calibration/` folder (beside the `edgesam` package in a checkout)."""
    return Path(__file__).resolve().parents[2] / "calibration"


def prompt_limits() -> dict[str, int]:
    """The prompt counts a bundle's manifest may record (max_points, max_boxes), from its schema: one source."""
    fields = schema_document("manifest")["properties"]["prompts"]["properties"]
    return {name: field["maximum"] for name, field in fields.items()}
