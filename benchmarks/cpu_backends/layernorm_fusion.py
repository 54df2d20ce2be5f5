"""Benchmark (CPU): the encoder exported with its ViT LayerNorms over (B, H, W, C), as before, against over
(B, H*W, C) (`edgesam.export.wrappers.token_norms_flattened`, what export does now), side by side in one
process on the same inputs: OpenVINO bf16 and fp32, ONNX Runtime fp32. OpenVINO fuses a LayerNorm over a
3-D tensor into one MVN kernel and splits one over a 4-D tensor into several element-wise nodes.

Models: the ROI model (`--checkpoint`, the scratch recipe's seed 0 by default: 8 crops of 128 px per call)
and vit_b at 1024 px (random init, seed 0; one image per call). Per model and engine: median ms per call
over `--calls` calls after 5 warm-up calls, the two graphs alternating call by call, and the largest
difference between their outputs. Results: results/layernorm_fusion.{json,md}.

    flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/cpu_backends/layernorm_fusion.py
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
HERE = Path(__file__).resolve().parent


def export_both(model, work: Path) -> dict[str, Path]:
    """encoder.onnx as export writes it now ("3-D norms") and as it did before ("4-D norms")."""
    from edgesam.export import onnx_export

    paths = {"3-D norms": work / "flat.onnx", "4-D norms": work / "plain.onnx"}
    onnx_export.export_encoder(model, paths["3-D norms"])
    flattened = onnx_export.token_norms_flattened
    onnx_export.token_norms_flattened = lambda module: contextlib.nullcontext()
    try:
        onnx_export.export_encoder(model, paths["4-D norms"])
    finally:
        onnx_export.token_norms_flattened = flattened
    return paths


def runners(paths: dict[str, Path], engine: str, threads: int) -> dict:
    if engine == "onnxruntime fp32":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        sessions = {k: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"]) for k, p in paths.items()}
        return {k: (lambda x, s=s: s.run(None, {s.get_inputs()[0].name: x})[0]) for k, s in sessions.items()}
    import openvino as ov

    precision = "bf16" if engine == "openvino bf16" else "f32"
    core = ov.Core()
    compiled = {k: core.compile_model(str(p), "CPU", {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
                                                        "INFERENCE_NUM_THREADS": threads}) for k, p in paths.items()}
    return {k: (lambda x, c=c: c(x)[0]) for k, c in compiled.items()}


def side_by_side(run: dict, x: np.ndarray, calls: int) -> dict:
    from edgesam_runtime.timing import round_robin

    outputs = {k: f(x) for k, f in run.items()}
    times = round_robin({k: (lambda f=f: f(x)) for k, f in run.items()}, calls, warmup=5)
    a, b = outputs.values()
    return {"ms": {k: statistics.median(v) for k, v in times.items()}, "max_abs_diff": float(np.abs(a - b).max()),
            "output_max_abs": float(np.abs(a).max())}


def main(argv=None) -> None:
    import torch

    from edgesam.models import arch_for, build_sam, create_model
    from edgesam_runtime.envinfo import machine_state
    from edgesam_runtime.files import write_json_atomic, write_text_atomic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=REPO / "runs" / "bench" / "scratch" / "seed0.pth")
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--skip-vit-b", action="store_true")
    args = ap.parse_args(argv)
    state = machine_state()
    result = {"machine": {"cpu_line": state["cpu_line"], "load_average": os.getloadavg()}, "threads": args.threads,
              "models": {}}
    torch.manual_seed(0)
    models = {"ROI model, 8 crops of 128 px": (lambda: create_model(checkpoint=args.checkpoint), (8, 3, 128, 128))}
    if not args.skip_vit_b:
        models["vit_b, 1 image of 1024 px"] = (lambda: build_sam(arch_for("vit_b", 1024)), (1, 3, 1024, 1024))
    rng = np.random.default_rng(0)
    for name, (make, shape) in models.items():
        x = rng.standard_normal(shape).astype(np.float32)
        with tempfile.TemporaryDirectory() as work:
            paths = export_both(make().eval(), Path(work))
            rows = {}
            for engine in ("openvino bf16", "openvino fp32", "onnxruntime fp32"):
                rows[engine] = side_by_side(runners(paths, engine, args.threads), x, args.calls if "1024" not in name else 5)
                print(name, engine, rows[engine], flush=True)
        result["models"][name] = rows
    result["load_after"] = os.getloadavg()
    result["command"] = "flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/cpu_backends/layernorm_fusion.py " + " ".join(sys.argv[1:])
    lines = ["# Encoder LayerNorms exported over (B, H*W, C) instead of (B, H, W, C)", "",
             f"Command: `{result['command']}`", "",
             f"CPU: {state['cpu_line']}; {args.threads} threads; load average before {result['machine']['load_average'][0]:.2f}, "
             f"after {result['load_after'][0]:.2f}. Median ms per call, the two graphs alternating call by call.", "",
             "| model | engine | 4-D norms (before) ms | 3-D norms (now) ms | speed-up | max abs diff of outputs (output max) |",
             "|---|---|---|---|---|---|"]
    for name, rows in result["models"].items():
        for engine, row in rows.items():
            before, now = row["ms"]["4-D norms"], row["ms"]["3-D norms"]
            lines.append(f"| {name} | {engine} | {before:.2f} | {now:.2f} | {before / now:.2f}x | "
                         f"{row['max_abs_diff']:.2e} ({row['output_max_abs']:.2f}) |")
    write_json_atomic(HERE / "results" / "layernorm_fusion.json", result)
    write_text_atomic(HERE / "results" / "layernorm_fusion.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
