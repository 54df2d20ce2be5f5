"""OpenVINO backend (CPU): the bundle's OpenVINO IR graph sets, and its plain ONNX sets too
(OpenVINO reads ONNX directly). Import-guarded: `pip install edgesam[openvino]`.

- Inference precision is set explicitly for every graph: OpenVINO's CPU plugin otherwise runs fp32
  graphs in bf16 on CPUs with AVX512_BF16/AMX, and an "fp32" set must mean fp32. A bf16 set asks
  for bf16; where the CPU has no bf16 math the plugin runs fp32, and `execution_precision` says so.
- Compiled models are cached on disk (OpenVINO's CACHE_DIR: `$EDGESAM_OPENVINO_CACHE`, else
  `$EDGESAM_CACHE/openvino`, else ~/.cache/edgesam/openvino; "off" disables), so a cold start imports
  the compiled blob instead of compiling again. An unwritable cache folder only costs the speed-up.
  Except an int8 graph whose float parts run in bf16: OpenVINO 2026.4 corrupted the heap in about
  half of the processes that imported such a blob on a Xeon with AMX (segmentation faults during
  and after inference; none in 16 processes that compiled it), so it is compiled at every open.
- One infer request runs one inference at a time and may not be shared across threads, so each graph
  keeps a small pool: a call borrows an idle request (creating one up to the pool size, else waiting)
  and returns it after copying the outputs out of the request's memory.
- Static shapes per call shape: OpenVINO's CPU plugin runs a graph compiled with dynamic axes (ROI
  crops, prompt sets, points per set) below its static speed: shape inference and memory planning at
  every call (the distilled ROI model, 8 crops, bf16: encoder 5.0 vs 2.9 ms, decoder 4.8 vs 3.9 ms;
  benchmarks/cpu_backends/results/ov_static_shapes.md). So each graph compiles a static copy for each
  input shape it is called with, the first time it sees it (0.2-0.4 s per graph, less from the cache),
  up to `static_shapes` shapes (`Segmenter.open(static_shapes=...)`, default `STATIC_SHAPES`; 0: dynamic
  only); later shapes run the dynamic compilation. A shape keeps the compilation it first ran on for
  the process's life: a static copy and the dynamic compilation differ in the last bits (bf16: in a
  few boundary pixels), so switching one shape from one to the other later (a copy compiled in the
  background, tried and measured) would answer the same frame differently over time. Each copy costs
  memory (the ROI model's three graphs: 30-100 MB per box count), which is why the copies are few
  (benchmarks/cpu_backends/results/ov_static_memory.md). `Segmenter.warmup()` compiles the one-box
  shapes; a line warms its usual box counts with one call of each. A decoder's static copy in bf16
  runs without OpenVINO's fused kernels ("snippets"): in 2026.4 the fused attention over a
  decoder's few prompt tokens, compiled for static shapes, sent 12x more mask pixels across zero than
  the dynamic compilation on the export tests' model (205 vs 17 of 4096); without them it is as close as
  the dynamic one and still 1.2-1.3x faster.
- Performance hint (`Segmenter.open(performance=...)`): "latency" (default) is one stream with every
  thread on the one image a line camera hands over at a time; "throughput" is OpenVINO's streams for
  several cameras calling `segment` at once, each stream with its share of the threads and the pool
  sized to OpenVINO's optimal number of infer requests.
- A graph set's float precision is the one its manifest records; an int8 graph's float parts (the
  ops left float: normalisation, softmax, the neck) run in bf16 where the CPU has bf16 math
  (`edgesam_runtime.backends.choice.openvino_precision`), in fp32 elsewhere.
"""
from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np

from edgesam_runtime import io_spec
from edgesam_runtime.errors import BackendError, BundleError

CACHE_ENV, CACHE_BASE_ENV = "EDGESAM_OPENVINO_CACHE", "EDGESAM_CACHE"
PRECISION_HINTS = {"fp32": "f32", "f32": "f32", "bf16": "bf16", "fp16": "f16", "f16": "f16"}
CONTRACT_NAMES = {io_spec.ENCODER_INPUT, io_spec.ENCODER_OUTPUT, *io_spec.DECODER_INPUTS, *io_spec.DECODER_OUTPUTS,
                  *io_spec.REFINER_INPUTS, io_spec.REFINER_OUTPUT}
STATIC_SHAPES = 4  # per graph: a line calls with a few box counts; each copy costs memory (module docstring)
MAX_REQUESTS = 4  # latency: concurrent calls beyond this wait: more requests only add memory on a small CPU
PERFORMANCE_HINTS = {"latency": "LATENCY", "throughput": "THROUGHPUT"}
_CORE_LOCK = threading.Lock()
_CORE = None


def _import_openvino():
    try:
        import openvino
    except ImportError as exc:
        raise BackendError(f"the OpenVINO backend needs the openvino package ({exc}); "
                           "pip install 'edgesam[openvino]' or use backend='onnxruntime'") from None
    return openvino


def available() -> bool:
    try:
        _import_openvino()
        return True
    except BackendError:
        return False


def core():
    """One OpenVINO Core per process (it owns the plugins; compile_model is thread-safe on it)."""
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            _CORE = _import_openvino().Core()
        return _CORE


def cache_dir() -> Path | None:
    """Where compiled models are cached; None when caching is off or the folder cannot be written."""
    value = os.environ.get(CACHE_ENV)
    if value is not None and value.strip().lower() in ("", "0", "off", "none", "false"):
        return None
    path = Path(value) if value else Path(os.environ.get(CACHE_BASE_ENV) or Path.home() / ".cache" / "edgesam") / "openvino"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None


def compile_config(precision: str, threads: int | None, cache: Path | None, performance: str = "latency") -> dict:
    if precision not in PRECISION_HINTS:
        raise BundleError(f"OpenVINO inference precision {precision!r}: expected one of {sorted(PRECISION_HINTS)}")
    config = {"PERFORMANCE_HINT": PERFORMANCE_HINTS[performance], "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision]}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    if cache is not None:
        config["CACHE_DIR"] = str(cache)
    return config


def cacheable(precision: str, quantized: bool) -> bool:
    """Whether a graph may go through the compiled-model cache: not an int8 graph run with bf16 float
    parts (importing its blob corrupted memory; see the module docstring)."""
    return not (quantized and PRECISION_HINTS.get(precision) == "bf16")


def port_name(port) -> str:
    """The port's contract name: OpenVINO keeps every name a tensor had (ONNX graphs often give the
    output an internal name too), so prefer the one `edgesam_runtime.io_spec` defines."""
    names = port.get_names()
    contract = CONTRACT_NAMES & names
    return sorted(contract)[0] if contract else port.get_any_name()


def _precision_name(ov_type, asked: str) -> str:
    """fp32 / bf16 / fp16 from the compiled model's element type (what runs, not what was asked)."""
    if ov_type is None:
        return asked
    name = ov_type.get_type_name() if hasattr(ov_type, "get_type_name") else str(ov_type)
    return {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}.get(name, name)


def _describe_port(port) -> tuple[str, tuple]:
    dtype = np.dtype(port.get_element_type().to_dtype()).name
    shape = tuple(d.get_length() if d.is_static else "dynamic" for d in port.get_partial_shape())
    return dtype, shape


class _Compiled:
    """One compiled model with a pool of infer requests: a request runs one inference at a time."""

    def __init__(self, compiled, max_requests: int):
        self.compiled = compiled
        self.max_requests = max_requests
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        self._created = 0
        self._create_lock = threading.Lock()

    def _borrow(self):
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._create_lock:
            if self._created < self.max_requests:
                self._created += 1
                return self.compiled.create_infer_request()
        return self._idle.get()  # every request busy: wait for one

    def infer(self, inputs: dict) -> list[np.ndarray]:
        request = self._borrow()
        try:
            # share_outputs=False: the arrays returned are copies, so the request can serve the next call.
            result = request.infer(inputs, share_inputs=False, share_outputs=False)
            return [np.asarray(result[i]) for i in range(len(self.compiled.outputs))]
        finally:
            self._idle.put(request)  # a failed inference leaves the request reusable


class OvGraph:
    """One graph compiled for the CPU (dynamic axes as dynamic), with static copies per call shape."""

    def __init__(self, path: Path, precision: str, threads: int | None, device: str = "CPU", use_cache: bool = True,
                 performance: str = "latency", static_shapes: int | None = None):
        self.path = Path(path)
        self.device = device
        self.config = compile_config(precision, threads, cache_dir() if use_cache else None, performance)
        try:
            self.model = core().read_model(str(self.path))
            compiled = core().compile_model(self.model, device, self.config)
        except Exception as exc:
            raise BundleError(f"{self.path}: OpenVINO cannot load this graph ({type(exc).__name__}: {exc})") from None
        self.compiled = compiled
        self.inputs = {port_name(p): p for p in compiled.inputs}
        self.output_names = [port_name(p) for p in compiled.outputs]
        self.loaded_from_cache = bool(self._property("LOADED_FROM_CACHE", False))
        self.execution_precision = _precision_name(self._property("INFERENCE_PRECISION_HINT", None), precision)
        self.streams = int(self._property("NUM_STREAMS", 1) or 1)
        self.max_requests = MAX_REQUESTS if performance == "latency" else max(
            1, int(self._property("OPTIMAL_NUMBER_OF_INFER_REQUESTS", self.streams) or self.streams))
        self._dynamic = _Compiled(compiled, self.max_requests)
        # None for a dynamic axis: OpenVINO itself answers a feed of another rank or size with empty outputs
        self._accepts = {name: tuple(d.get_length() if d.is_static else None for d in p.get_partial_shape())
                         for name, p in self.inputs.items()}
        dynamic = any(not p.get_partial_shape().is_static for p in compiled.inputs)
        self.static_shapes = (STATIC_SHAPES if static_shapes is None else static_shapes) if dynamic else 0
        if not self.static_shapes:
            self.model = None  # nothing to reshape: do not keep the graph's weights twice
        self._static_config = dict(self.config)
        if io_spec.POINT_COORDS in self.inputs and self.config["INFERENCE_PRECISION_HINT"] != "f32":
            self._static_config["SNIPPETS_MODE"] = "DISABLE"
        self._static: dict[tuple, _Compiled | None] = {}  # None: that shape failed to compile static
        self._static_lock = threading.Lock()

    def _property(self, name: str, default):
        try:
            return self.compiled.get_property(name)
        except Exception:  # older OpenVINO releases lack some read-only properties
            return default

    def io(self) -> tuple[dict, dict]:
        return ({name: _describe_port(p) for name, p in self.inputs.items()},
                {port_name(p): _describe_port(p) for p in self.compiled.outputs})

    def _for_shapes(self, feeds: dict[str, np.ndarray]) -> _Compiled:
        """The static copy for these input shapes (compiled on first sight while there is room), else the
        dynamic compilation; a shape's answer comes from the same compilation every time."""
        if not self.static_shapes:
            return self._dynamic
        key = tuple(np.shape(feeds[name]) for name in self.inputs)
        if key not in self._static:
            with self._static_lock:
                if key not in self._static and len(self._static) < self.static_shapes:
                    self._static[key] = self._compile_static(key)
        return self._static.get(key) or self._dynamic

    def _compile_static(self, key: tuple) -> _Compiled | None:
        try:
            model = self.model.clone()
            model.reshape({name: list(shape) for name, shape in zip(self.inputs, key)})
            return _Compiled(core().compile_model(model, self.device, self._static_config), self.max_requests)
        except Exception:  # a shape this graph's static form cannot take: the dynamic compilation answers it
            return None

    def _check_shapes(self, inputs: dict[str, np.ndarray]) -> None:
        for name, accepts in self._accepts.items():
            shape = np.shape(inputs[name])
            if len(shape) != len(accepts) or any(a is not None and a != n for a, n in zip(accepts, shape)):
                want = "x".join("?" if a is None else str(a) for a in accepts)
                raise BackendError(f"{self.path.name}: input {name!r} of shape {shape}; the graph takes {want}")

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs = {name: feeds[name] for name in self.inputs}
        self._check_shapes(inputs)
        try:
            outputs = self._for_shapes(inputs).infer(inputs)
        except Exception as exc:
            raise BackendError(f"{self.path.name}: OpenVINO failed ({type(exc).__name__}: {exc})") from None
        return dict(zip(self.output_names, outputs))


class OvListGraph(OvGraph):
    """An OvGraph answering like an ONNX Runtime session: `run(feeds)` -> outputs in order (the refiner)."""

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = super().run(feeds)
        return [out[name] for name in self.output_names]


class OvBackend:
    name = "openvino"

    def __init__(self, encoder_path: Path, decoder_path: Path, precisions=("fp32", "fp32"), threads: int | None = None,
                 performance: str = "latency", quantized=(False, False), static_shapes: int | None = None, **_):
        self.performance, self.static_shapes = performance, static_shapes
        self.encoder = OvGraph(encoder_path, precisions[0], threads, performance=performance,
                               use_cache=cacheable(precisions[0], quantized[0]), static_shapes=static_shapes)
        self.decoder = OvGraph(decoder_path, precisions[1], threads, performance=performance,
                               use_cache=cacheable(precisions[1], quantized[1]), static_shapes=static_shapes)
        self.threads = threads

    def io(self) -> dict:
        return {"encoder": self.encoder.io(), "decoder": self.decoder.io()}

    def shape_limits(self) -> dict:
        """OpenVINO compiles dynamic axes as dynamic: no limits beyond the graph's static axes."""
        return {}

    def run_encoder(self, image: np.ndarray) -> np.ndarray:
        return self.encoder.run({io_spec.ENCODER_INPUT: image})[io_spec.ENCODER_OUTPUT]

    def run_decoder(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        out = self.decoder.run(feeds)
        masks, scores = io_spec.DECODER_OUTPUTS
        return out[masks], out[scores]

    @property
    def loaded_from_cache(self) -> bool:
        return self.encoder.loaded_from_cache and self.decoder.loaded_from_cache

    @property
    def execution_precision(self) -> dict:
        """The precision each graph actually runs in (bf16 asked on a CPU without bf16 math runs f32)."""
        return {"encoder": self.encoder.execution_precision, "decoder": self.decoder.execution_precision}

    def open_refiner(self, path: Path, precision: str) -> OvListGraph:
        """The mask refiner compiled like the decoder (its precision and performance hint)."""
        return OvListGraph(path, precision, self.threads, performance=self.performance,
                           static_shapes=self.static_shapes)

    @property
    def providers(self) -> list[str]:
        copies = max(self.encoder.static_shapes, self.decoder.static_shapes)
        return [f"OpenVINO CPU (encoder {self.encoder.execution_precision}, decoder {self.decoder.execution_precision}, "
                f"{self.performance} hint, {self.encoder.streams} stream{'s' if self.encoder.streams != 1 else ''}, "
                f"static copies per graph: {copies or 'none'})"]
