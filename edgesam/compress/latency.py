"""ONNX Runtime latency of image encoders, measured side by side.

Each encoder is exported with the exporter's own `export_encoder` (the graph a bundle ships), then
the sessions are timed round-robin on the same input, so load from other processes affects every
model alike and the ratios stay comparable.
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import numpy as np

from edgesam_runtime.backends.ort import cpu_session
from edgesam_runtime.timing import round_robin


def export_encoders(models: dict, out_dir: Path) -> dict[str, Path]:
    """Export each model's encoder to out_dir/<name>.encoder.onnx (fp32, opset 17)."""
    from edgesam.export.onnx_export import export_encoder

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, model in models.items():
        path = out_dir / f"{name}.encoder.onnx"
        export_encoder(model, path)
        paths[name] = path
    return paths


def time_sessions(paths: dict[str, Path], image_size: int, runs: int = 5, warmup: int = 1, threads: int = 0,
                  low_memory: bool = False) -> dict:
    """Median/mean/min ms per encoder call, timed round-robin; `threads=0` lets ORT pick.

    `low_memory` turns off ORT's memory arena and pattern planning, so each session gives its
    activations back after a call: several large encoders (vit_b at 1024 px needs GBs for its
    global-attention maps) can then stay open side by side on a small machine.
    """
    sessions = {n: cpu_session(p, threads or None, low_memory) for n, p in paths.items()}
    x = np.random.default_rng(0).standard_normal((1, 3, image_size, image_size)).astype(np.float32)
    feeds = {n: {s.get_inputs()[0].name: x} for n, s in sessions.items()}
    times = round_robin({n: (lambda s=s, f=feeds[n]: s.run(None, f)) for n, s in sessions.items()}, runs, warmup)
    return {n: {"median_ms": statistics.median(t), "mean_ms": statistics.fmean(t), "min_ms": min(t), "runs": len(t)}
            for n, t in times.items()}


def encoder_latency(models: dict, runs: int = 5, warmup: int = 1, work_dir: Path | None = None) -> dict:
    """Export and time the encoders of `models` (name -> SAM) side by side; all must share an input size."""
    sizes = {m.image_encoder.img_size for m in models.values()}
    if len(sizes) != 1:
        raise ValueError(f"latency: models have different input sizes {sorted(sizes)}")
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".latency-") as tmp:
        paths = export_encoders(models, Path(tmp))
        return time_sessions(paths, sizes.pop(), runs=runs, warmup=warmup)
