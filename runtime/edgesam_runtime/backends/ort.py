"""ONNX Runtime backend: one session per graph, providers in the order TensorRT, CUDA, CPU.

`InferenceSession.run` is thread-safe, so one session serves concurrent `segment` calls; nothing
here is mutated after construction.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesam_runtime import io_spec
from edgesam_runtime.errors import BackendError, BundleError

PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int64)": "int64",
              "tensor(int32)": "int32"}


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - onnxruntime is a hard dependency
        raise BackendError(f"onnxruntime is not installed ({exc}); pip install onnxruntime") from None
    return onnxruntime


def pick_providers(requested=None) -> list[str]:
    """The requested providers that are available, else TensorRT, CUDA, CPU where available."""
    available = _ort().get_available_providers()
    if requested:
        names = [p[0] if isinstance(p, tuple) else p for p in requested]
        missing = [n for n in names if n not in available]
        if missing:
            raise BackendError(f"providers: {missing} not available in this onnxruntime; available: {available}")
        return list(requested)
    return [p for p in PREFERRED_PROVIDERS if p in available] or ["CPUExecutionProvider"]


def session_options(threads: int | None):
    ort = _ort()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only: line software logs are not the place for ORT warnings
    # No busy-waiting between runs: spinning pool threads steal the cores that host post-processing
    # and the line software need (measured: 2x slower segment calls on a 2-core host with spinning).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return opts


def cpu_session(path, threads: int | None = None, low_memory: bool = False):
    """A CPU-only session with the runtime's options: the toolchain's export checks and timings open
    their graphs here, so they measure what line software runs.

    `low_memory` turns off ONNX Runtime's memory arena and pattern planning, so a session gives its
    activations back after each call (several vit_b encoders at 1024 px can stay open side by side).
    """
    opts = session_options(threads)
    if low_memory:
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = False
    return _ort().InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


class OrtGraph:
    """One ONNX graph in one session; `io()` describes its inputs/outputs for verification."""

    def __init__(self, path: Path, providers: list, threads: int | None):
        self.path = Path(path)
        try:
            self.session = _ort().InferenceSession(str(self.path), sess_options=session_options(threads), providers=providers)
        except Exception as exc:
            raise BundleError(f"{self.path}: onnxruntime cannot load this graph ({type(exc).__name__}: {exc})") from None
        self.output_names = [o.name for o in self.session.get_outputs()]

    def io(self) -> tuple[dict, dict]:
        """({name: (dtype, shape)} inputs, outputs); dynamic axes as strings."""
        def describe(args):
            return {a.name: (_ORT_TYPES.get(a.type, a.type), tuple(d if isinstance(d, int) else str(d) for d in a.shape))
                    for a in args}
        return describe(self.session.get_inputs()), describe(self.session.get_outputs())

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self.session.run(self.output_names, feeds)
        except Exception as exc:
            raise BackendError(f"{self.path.name}: onnxruntime failed ({type(exc).__name__}: {exc})") from None

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()


class OrtBackend:
    name = "onnxruntime"

    def __init__(self, encoder_path: Path, decoder_path: Path, providers=None, threads: int | None = None, **_):
        chosen = pick_providers(providers)
        self.encoder = OrtGraph(encoder_path, chosen, threads)
        self.decoder = OrtGraph(decoder_path, chosen, threads)

    def io(self) -> dict:
        return {"encoder": self.encoder.io(), "decoder": self.decoder.io()}

    def shape_limits(self) -> dict:
        """No profile limits in ONNX Runtime beyond static axes (checked against io)."""
        return {}

    def run_encoder(self, image: np.ndarray) -> np.ndarray:
        return self.encoder.run({io_spec.ENCODER_INPUT: image})[0]

    def run_decoder(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        out = dict(zip(self.decoder.output_names, self.decoder.run(feeds)))
        masks, scores = io_spec.DECODER_OUTPUTS
        return out[masks], out[scores]

    @property
    def providers(self) -> list[str]:
        return self.encoder.providers
