"""Experiment (CPU): what NNCF's SmoothQuant and bias correction cost in peak memory and give in accuracy,
quantizing the vit_b encoder IR as `edgesam export --format openvino --precision int8` does (mixed preset,
transformer model type, fast bias correction), one fresh process per setting so each peak RSS is its own.

For each of: default | no SmoothQuant | no bias correction | neither (the float model converted from ONNX in
the child, as export does), and then with the float model read from an IR the parent wrote (fp32, or with
fp16-compressed weights, which NNCF quantizes as they are), the child quantizes with
`--images` calibration images and reports its maximum resident set size (Linux ru_maxrss); then, in this
process, every quantized model's embeddings are compared with the fp32 graph's on `--check` images
(cosine similarity per image; the calibration images come first, then images it never saw).

    .venv/bin/python benchmarks/cpu_backends/nncf_knobs.py --encoder ENCODER.onnx --image-size 1024

ENCODER.onnx: e.g. the fp32 encoder calib_memory.py exports under its --work. Results: results/nncf_knobs.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "magnetic-tile" / "free" / "images"
NEITHER = {"smooth_quant": False, "bias_correction": False}
SETTINGS = {"default": {}, "no SmoothQuant": {"smooth_quant": False}, "no bias correction": {"bias_correction": False},
            "neither": NEITHER,
            # where the float model comes from: converted from ONNX in this process (export's way, the rows above),
            # an fp32 IR read from disk (no ONNX frontend in memory), or an IR with fp16-compressed weights
            "neither, fp32 IR from disk": {**NEITHER, "source": "ir_fp32"},
            "neither, fp16-compressed IR": {**NEITHER, "source": "ir_fp16"},
            "default, fp16-compressed IR": {"source": "ir_fp16"},
            # export's int8_matmul_const_only: the attention MatMuls (two activations) stay float, so no
            # statistics are gathered on the 4096 x 4096 attention maps of vit_b's global blocks
            "attention MatMuls float": {"attention_float": True},
            "neither, attention MatMuls float": {**NEITHER, "attention_float": True}}

CHILD = """
import json, resource, sys
import nncf, openvino as ov
from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters
from edgesam.export.calibration import resolve_calibration_images
from edgesam.export.openvino import _ImageDataset, attention_matmuls, quiet_nncf
encoder, size, calib, count, knobs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5]), sys.argv[6]
images = resolve_calibration_images(calib, count)
# an .xml is an IR the parent wrote (same conversion), so this process never holds the ONNX graph
model = ov.Core().read_model(encoder) if encoder.endswith(".xml") else ov.convert_model(encoder)
advanced = {}
if not knobs.get("smooth_quant", True):
    advanced["smooth_quant_alphas"] = AdvancedSmoothQuantParameters(matmul=-1)  # a negative alpha turns it off
if not knobs.get("bias_correction", True):
    advanced["disable_bias_correction"] = True
scope = nncf.IgnoredScope(names=attention_matmuls(model), validate=False) if knobs.get("attention_float") else None
with quiet_nncf():
    quantized = nncf.quantize(model, nncf.Dataset(_ImageDataset(images, size)),
                              preset=nncf.QuantizationPreset.MIXED, target_device=nncf.TargetDevice.CPU,
                              subset_size=len(images), fast_bias_correction=True, model_type=nncf.ModelType.TRANSFORMER,
                              advanced_parameters=AdvancedQuantizationParameters(**advanced), ignored_scope=scope)
ov.save_model(quantized, out, compress_to_fp16=False)
print(json.dumps({"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9}))
"""


def median_ms(model, x: np.ndarray, calls: int = 3) -> float:
    """Median wall time of `calls` calls after one warm-up call, as the runtime runs an int8 set."""
    from edgesam_runtime.timing import repeat_ms

    return float(np.median(repeat_ms(lambda: model(x), calls, warmup=1)))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum() / (np.linalg.norm(a) * np.linalg.norm(b)))


def main(argv=None) -> None:
    import openvino as ov

    from edgesam.export.calibration import resolve_calibration_images
    from edgesam.export.openvino import _ImageDataset
    from edgesam_runtime.envinfo import cpu_features, describe_cpu, has_bf16_math, load_average
    from edgesam_runtime.files import write_text_atomic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--image-size", type=int, default=1024)
    ap.add_argument("--images", type=int, default=1, help="calibration images")
    ap.add_argument("--check", type=int, default=4, help="images compared with fp32 (the calibration ones first)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--time", action="store_true", help="also the quantized encoder's median latency (quiet machine)")
    ap.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS), help="default: all")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "cpu_backends" / "results" / "nncf_knobs.md"))
    args = ap.parse_args(argv)
    load_before = load_average()
    core = ov.Core()
    inputs = list(iter(_ImageDataset(resolve_calibration_images(args.data, args.check), args.image_size)))
    reference = core.compile_model(ov.convert_model(args.encoder), "CPU")
    expected = [reference(x)[0] for x in inputs]
    # the runtime runs an int8 set's float parts in bf16 where the CPU has bf16 math (edgesam_runtime.backends)
    bf16 = has_bf16_math(cpu_features())
    rows = []
    with tempfile.TemporaryDirectory() as work:
        sources = {"convert": args.encoder}
        for source, fp16 in (("ir_fp32", False), ("ir_fp16", True)):
            sources[source] = os.path.join(work, f"encoder.{source}.xml")
            ov.save_model(ov.convert_model(args.encoder), sources[source], compress_to_fp16=fp16)
        for name in args.settings:
            knobs = SETTINGS[name]
            out = os.path.join(work, name.replace(" ", "_") + ".xml")
            done = subprocess.run([sys.executable, "-c", CHILD, sources[knobs.get("source", "convert")], str(args.image_size), args.data,
                                   str(args.images), json.dumps(knobs), out], check=True, capture_output=True, text=True)
            peak = json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_gb"]
            model = core.compile_model(out, "CPU", {"INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32"})
            rows.append((name, peak, [cosine(e, model(x)[0]) for e, x in zip(expected, inputs)],
                         median_ms(model, inputs[0]) if args.time else None))
            print(rows[-1], flush=True)
    lines = ["# NNCF int8 of the vit_b encoder: SmoothQuant and bias correction, memory against accuracy", "",
             f"Command: `.venv/bin/python benchmarks/cpu_backends/nncf_knobs.py {shlex.join(argv or sys.argv[1:])}`", "",
             f"CPU: {describe_cpu()}; load average before {load_before}, after {load_average()}.", "",
             f"{args.images} calibration image(s) (magnetic-tile free/), {args.image_size} px, random-init vit_b; cosine of "
             f"the embeddings against the fp32 graph on {args.check} images, the calibration image(s) first.", "",
             f"| setting | peak RSS GB | cosine vs fp32 per image | encoder ms (float parts {'bf16' if bf16 else 'fp32'}) |",
             "|---|---|---|---|"]
    lines += [f"| {n} | {p:.2f} | {', '.join(f'{c:.4f}' for c in cs)} | {'-' if t is None else f'{t:.0f}'} |"
              for n, p, cs, t in rows]
    write_text_atomic(Path(args.out), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
