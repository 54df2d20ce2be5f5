"""`--measure-backends`: time each ONNX graph set's encoder on every installed CPU backend, so that
`Segmenter.open(..., backend="auto")` on a CPU of the same model and flags picks the measured
fastest (see `edgesam_runtime.backends.choice`). Figures are medians of interleaved runs in one
process, recorded with the CPU and the load average; a busy machine makes them noisy, not biased
towards one backend.
"""
from __future__ import annotations

import statistics

import numpy as np

from edgesam_runtime import geometry, io_spec
from edgesam_runtime.backends import ov as ov_backend
from edgesam_runtime.backends.ort import OrtGraph, pick_providers
from edgesam_runtime.backends.ov import OvGraph
from edgesam_runtime.envinfo import cpu_features, load_average
from edgesam_runtime.timing import round_robin

RUNS, WARMUP = 3, 1


def _graphs(path, backends):
    """{backend: callable(x) -> embeddings} for the backends that are installed."""
    out = {}
    if "onnxruntime" in backends:
        graph = OrtGraph(path, pick_providers(["CPUExecutionProvider"]), None)
        out["onnxruntime"] = lambda x: graph.run({io_spec.ENCODER_INPUT: x})
    if "openvino" in backends:
        ov_graph = OvGraph(path, "fp32", None, use_cache=False)
        out["openvino"] = lambda x: ov_graph.run({io_spec.ENCODER_INPUT: x})
    return out


def measure_backends(bundle, manifest: dict, log, runs: int = RUNS) -> dict:
    """{"cpu", "load_average", "runs", "graph_sets": {set: {backend: {"encoder_ms"}}}} for ONNX sets."""
    from edgesam.export.checks import sample_image

    backends = ["onnxruntime"] + (["openvino"] if ov_backend.available() else [])
    x = geometry.preprocess(sample_image(), manifest["model"]["image_size"])[0]
    record = {"cpu": cpu_features(), "load_average": load_average(), "runs": runs, "warmup": WARMUP,
              "method": "median encoder time, backends interleaved in one process", "graph_sets": {}}
    for name, entries in manifest["graphs"].items():
        if entries["encoder"]["format"] != "onnx":
            continue
        graphs = _graphs(bundle / entries["encoder"]["file"], backends)
        times = round_robin({b: (lambda run=run: run(np.ascontiguousarray(x))) for b, run in graphs.items()}, runs, WARMUP)
        record["graph_sets"][name] = {b: {"encoder_ms": round(statistics.median(t), 2)} for b, t in times.items()}
        log(f"{name}: encoder " + ", ".join(f"{b} {v['encoder_ms']:.1f} ms" for b, v in record["graph_sets"][name].items()))
        del graphs
    record["load_average_after"] = load_average()
    return record
