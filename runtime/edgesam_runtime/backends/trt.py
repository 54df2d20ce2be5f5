"""TensorRT backend (TensorRT 10 tensor API), device memory through CuPy; both import-guarded.

An engine is a plan for one TensorRT version on one GPU architecture. The manifest records both for
each engine (entry["tensorrt"] = {"tensorrt_version", "compute_capability", "gpu", "profile", ...}, else
the bundle's `versions`); a mismatch is refused with a message telling the user to rebuild on the target.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from edgesam_runtime import io_spec
from edgesam_runtime.errors import BackendError, BundleError


def _import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendError(f"TensorRT engines need the tensorrt Python package ({exc}); use an ONNX graph set "
                           "(fp32/fp16/int8) or pip install tensorrt") from None
    try:
        import cupy
    except ImportError as exc:
        raise BackendError(f"the TensorRT backend moves tensors with CuPy ({exc}); pip install cupy-cuda12x") from None
    return trt, cupy


def running_versions(trt, cupy) -> dict:
    major, minor = cupy.cuda.Device(0).compute_capability[:-1], cupy.cuda.Device(0).compute_capability[-1]
    return {"version": trt.__version__, "compute_capability": f"{major}.{minor}"}


def recorded_versions(info, part: str) -> dict:
    entry = info.entry(part).get("tensorrt", {}) or {}
    versions = info.manifest.get("versions", {})
    version = entry.get("tensorrt_version", entry.get("version", versions.get("tensorrt")))
    return {"version": version,
            "compute_capability": entry.get("compute_capability", versions.get("compute_capability"))}


def check_compatible(path: Path, recorded: dict, running: dict) -> None:
    """Refuse an engine built by another TensorRT version or for another GPU architecture."""
    for key, label in (("version", "TensorRT version"), ("compute_capability", "GPU compute capability")):
        if recorded.get(key) is None:
            raise BundleError(f"{path}: the manifest does not record the {label} this engine was built with; rebuild it "
                              "with `edgesam export --format engine` on this machine")
        if str(recorded[key]) != str(running[key]):
            raise BundleError(f"{path}: engine built with {label} {recorded[key]}, this machine has {running[key]}; "
                              "TensorRT engines are not portable: rebuild it here from the bundle's ONNX graphs "
                              "(`edgesam export --format engine`)")


class TrtGraph:
    """One engine with one execution context; calls are serialised (a context is not re-entrant)."""

    def __init__(self, trt, cupy, path: Path):
        self.trt, self.cupy, self.path = trt, cupy, Path(path)
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise BundleError(f"{self.path}: TensorRT could not deserialize this engine (corrupt, or another version)")
        self.context = self.engine.create_execution_context()
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.lock = threading.Lock()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.inputs = [n for n in names if is_input[n]]
        self.outputs = [n for n in names if not is_input[n]]

    def _describe(self, name: str):
        dtype = np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name))).name
        shape = tuple(int(d) if d >= 0 else "dynamic" for d in self.engine.get_tensor_shape(name))
        return dtype, shape

    def io(self):
        return ({n: self._describe(n) for n in self.inputs}, {n: self._describe(n) for n in self.outputs})

    def profile(self, name: str):
        """(min, max) shape of an input in optimization profile 0."""
        lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
        return tuple(lo), tuple(hi)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cp = self.cupy
        with self.lock, self.stream:
            try:
                keep = []
                for name in self.inputs:
                    dev = cp.asarray(feeds[name])
                    keep.append(dev)
                    self.context.set_input_shape(name, tuple(dev.shape))
                    self.context.set_tensor_address(name, dev.data.ptr)
                outs = {}
                for name in self.outputs:
                    dtype = self.trt.nptype(self.engine.get_tensor_dtype(name))
                    outs[name] = cp.empty(tuple(self.context.get_tensor_shape(name)), dtype=dtype)
                    self.context.set_tensor_address(name, outs[name].data.ptr)
                if not self.context.execute_async_v3(self.stream.ptr):
                    raise RuntimeError("execute_async_v3 returned False")
                self.stream.synchronize()
                return {name: cp.asnumpy(arr) for name, arr in outs.items()}
            except Exception as exc:
                raise BackendError(f"{self.path.name}: TensorRT failed ({type(exc).__name__}: {exc})") from None


class TrtBackend:
    name = "tensorrt"

    def __init__(self, encoder_path: Path, decoder_path: Path, info=None, **_):
        trt, cupy = _import_tensorrt()
        try:
            running = running_versions(trt, cupy)
        except Exception as exc:
            raise BackendError(f"no usable CUDA GPU for TensorRT ({type(exc).__name__}: {exc})") from None
        for part, path in (("encoder", encoder_path), ("decoder", decoder_path)):
            check_compatible(Path(path), recorded_versions(info, part), running)
        self.encoder = TrtGraph(trt, cupy, encoder_path)
        self.decoder = TrtGraph(trt, cupy, decoder_path)

    def io(self) -> dict:
        return {"encoder": self.encoder.io(), "decoder": self.decoder.io()}

    def shape_limits(self) -> dict:
        """Engine profile bounds on prompt sets (B) and points per set (N): {axis: (min, max)}."""
        lo, hi = self.decoder.profile(io_spec.POINT_COORDS)
        limits = {io_spec.NUM_PROMPTS: (lo[0], hi[0]), io_spec.NUM_POINTS: (lo[1], hi[1])}
        enc_lo, enc_hi = self.encoder.profile(io_spec.ENCODER_INPUT)
        limits[io_spec.NUM_CROPS] = (enc_lo[0], enc_hi[0])  # ROI bundles: crops per encoder call
        return limits

    def run_encoder(self, image: np.ndarray) -> np.ndarray:
        return self.encoder.run({io_spec.ENCODER_INPUT: image})[io_spec.ENCODER_OUTPUT]

    def run_decoder(self, feeds: dict[str, np.ndarray]):
        out = self.decoder.run(feeds)
        masks, scores = io_spec.DECODER_OUTPUTS
        return out[masks], out[scores]

    @property
    def providers(self) -> list[str]:
        return ["TensorRT"]
