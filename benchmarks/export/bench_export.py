"""Export benchmark: graph sizes, ONNX Runtime encoder latency fp32 vs fp16 vs int8 (side by side, one
process, intra_op threads = 2) and mask IoU of each precision against the PyTorch fp32 reference with
box prompts on magnetic-tile images.

Run under the shared benchmark lock (two benchmarks never run at once), e.g.:

    flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/export/bench_export.py --variant vit_b \
        --runs 3 --calib-images 2 --iou-images 2
    flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/export/bench_export.py --variant vit_t \
        --runs 10 --calib-images 16 --iou-images 40

Whole-image framing only: a trained ROI-framed model is measured by benchmarks/fidelity/trained.py.

Results go to benchmarks/export/results/<name>.json and .md. The machine is shared: other processes
may run during a measurement, so compare ratios (measured interleaved in one run), not absolute times.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from edgesam_runtime import geometry, io_spec
from edgesam_runtime.timing import round_robin
from edgesam.data import load_dataset, read_image, tight_box
from edgesam.utils.environment import toolchain_environment
from edgesam.export import ExportConfig, export_bundle
from edgesam.export.calibration import ImageCalibrationReader, calibration_digest, resolve_calibration_images
from edgesam.export.checks import cpu_session, decoder_feeds
from edgesam.export.quantize import quantize_graph
from edgesam.eval import mask_agreement
from edgesam_runtime.metrics import mask_iou, summarize
from edgesam.models import load_model
from edgesam.reference.predictor import SamReferencePredictor
from edgesam_runtime.prediction import select_outputs
from edgesam_runtime.files import write_json_atomic, write_text_atomic

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("EDGESAM_MAGNETIC_TILE", REPO.parent / "shared" / "data" / "magnetic-tile"))
# Extra INT8 variants measured beside the default (ExportConfig overrides); all share one calibration.
VARIANTS = {
    "int8_per_tensor": {"int8_per_channel": False},
    "int8_linear_only": {"int8_matmul_const_only": True},
    "int8_per_tensor_linear_only": {"int8_per_channel": False, "int8_matmul_const_only": True},
}


def session(path: Path, threads: int):
    # the arena off: several vit_b sessions side by side would otherwise keep ~5 GB each
    return cpu_session(path, threads, low_memory=True)


def latency(encoders: dict[str, Path], x: np.ndarray, runs: int, warmup: int, threads: int) -> dict:
    """Interleaved runs (fp32, fp16, int8, fp32, ...) so load changes hit every precision alike."""
    sessions = {name: session(path, threads) for name, path in encoders.items()}
    feeds = {io_spec.ENCODER_INPUT: x}
    times_ms = round_robin({name: (lambda s=s: s.run(None, feeds)) for name, s in sessions.items()}, runs, warmup)
    times = {name: [ms / 1e3 for ms in t] for name, t in times_ms.items()}
    base = float(np.median(times["fp32"]))
    return {name: {"median_s": float(np.median(t)), "min_s": float(np.min(t)), "runs_s": [float(v) for v in t],
                   "speedup_vs_fp32": base / float(np.median(t))} for name, t in times.items()}


def iou_samples(count: int, seed: int = 0):
    """(image, boxes, gt masks) from magnetic-tile's labelled classes, spread over the classes."""
    from edgesam.eval import labelled_images

    ds = labelled_images(load_dataset(DATA))
    picks = np.linspace(0, len(ds) - 1, min(count, len(ds))).round().astype(int)
    for i in picks:
        sample = ds.load(int(i))
        if len(sample.masks) == 0:
            continue
        masks = sample.masks[:4]
        yield sample.stem, sample.image, np.stack([tight_box(m) for m in masks]).astype(np.float32), masks


def accuracy(model, encoders: dict[str, Path], decoders: dict[str, Path], count: int, threads: int) -> dict:
    """Mean IoU of each precision's single-mask answer against PyTorch fp32 (and against ground truth)."""
    size = model.image_encoder.img_size
    ref = SamReferencePredictor(model)
    enc = {n: session(p, threads) for n, p in encoders.items()}
    dec = {n: session(p, threads) for n, p in decoders.items()}
    preds = {n: [] for n in enc}
    references = []
    vs_gt = {n: [] for n in ["pytorch", *enc]}
    for stem, image, boxes, gt in iou_samples(count):
        ref.set_image(image)
        torch_masks = ref.predict(boxes=boxes).masks[:, 0]
        references += list(torch_masks)
        vs_gt["pytorch"] += [mask_iou(p, g) for p, g in zip(torch_masks, gt)]
        x, hw, _ = geometry.preprocess(image, size)
        coords, labels = geometry.build_prompt_arrays(None, None, boxes, hw, size)
        for name in enc:
            emb = enc[name].run(None, {io_spec.ENCODER_INPUT: x})[0]
            low, iou = dec[name].run(None, decoder_feeds(emb, coords, labels))
            low, _ = select_outputs(low, iou, multimask=False)
            masks = geometry.upscale_masks(low, hw, size)[:, 0]
            preds[name] += list(masks)
            vs_gt[name] += [mask_iou(p, g) for p, g in zip(masks, gt)]
    # empty/empty pairs are left out of the IoU and counted (two empty masks agree on nothing measurable)
    agreements = {n: mask_agreement(p, references).to_dict() for n, p in preds.items()}
    return {"empty_reference_masks": int(sum(not m.any() for m in references)),
            "empty_masks": {n: {k: a[k] for k in ("reference_empty", "prediction_empty", "both_empty", "prompts")}
                            for n, a in agreements.items()},
            "iou_vs_pytorch": {n: a["iou"] for n, a in agreements.items()},
            "iou_vs_ground_truth": {n: summarize(v) for n, v in vs_gt.items()}}


def calibrate_only(model, cfg: ExportConfig, work: Path, image_size: int) -> int:
    from edgesam.export.onnx_export import export_encoder

    stage = work / "calibrate_stage"
    stage.mkdir(parents=True, exist_ok=True)
    export_encoder(model, stage / "encoder.onnx", cfg.opset, cfg.external_data_threshold)
    del model
    images = resolve_calibration_images(cfg.calib_data, cfg.calib_max_images)
    info = quantize_graph(stage / "encoder.onnx", stage / "encoder.int8.onnx", ImageCalibrationReader(images, image_size),
                          cfg, calibration_digest(images), print)
    print(f"calibration cached: {info['cache']}")
    return 0


def sizes(folder: Path) -> dict:
    return {p.name: p.stat().st_size for p in sorted(folder.glob("*.onnx"))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="vit_t")
    ap.add_argument("--checkpoint")
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--calib-images", type=int, default=16)
    ap.add_argument("--iou-images", type=int, default=8)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="extra int8 variants to measure ('' for none)")
    ap.add_argument("--name")
    ap.add_argument("--work", default=str(REPO / "runs" / "bench" / "export"))
    ap.add_argument("--stage", choices=["calibrate", "all"], default="all",
                    help="calibrate: only fill the calibration cache (a lean process: vit_b calibration needs "
                         "~13 GB), so the full run's export finds the ranges cached")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model, arch = load_model(args.variant if not args.checkpoint else None, args.checkpoint, args.image_size)
    if getattr(model, "framing", None) is not None and (model.framing.roi or model.framing.dense_box):
        sys.exit(f"{args.checkpoint}: a ROI / dense-box model; this script scores whole-image prompts only "
                 "(use benchmarks/fidelity/trained.py)")
    name = args.name or f"{arch.variant}_{arch.image_size}_{'trained' if args.checkpoint else 'random'}"
    work = Path(args.work) / name
    calib = str(DATA / "free" / "images")
    cfg = ExportConfig(precisions=("fp32", "fp16", "int8"), calib_data=calib, calib_max_images=args.calib_images,
                       calib_cache=str(work / "calib_cache"), check_parity=False)
    if args.stage == "calibrate":
        return calibrate_only(model, cfg, work, arch.image_size)
    t0 = time.perf_counter()
    manifest = export_bundle(model, work / "bundle", cfg, arch=arch, checkpoint_path=args.checkpoint)
    export_s = time.perf_counter() - t0
    bundle = work / "bundle"
    encoders = {"fp32": bundle / "encoder.onnx", "fp16": bundle / "encoder.fp16.onnx", "int8": bundle / "encoder.int8.onnx"}
    decoders = {"fp32": bundle / "decoder.onnx", "fp16": bundle / "decoder.fp16.onnx", "int8": bundle / "decoder.onnx"}
    images = resolve_calibration_images(calib, args.calib_images)
    for v in filter(None, args.variants.split(",")):
        dst = work / f"encoder.{v}.onnx"
        info = quantize_graph(bundle / "encoder.onnx", dst, ImageCalibrationReader(images, arch.image_size),
                              cfg.replace(**VARIANTS[v]), calibration_digest(images), print)
        encoders[v], decoders[v] = dst, bundle / "decoder.onnx"
        print(f"{v}: cache hit {info['cache']['hit']}", flush=True)
    x = geometry.preprocess(read_image(images[0]), arch.image_size)[0]
    lat = latency(encoders, x, args.runs, args.warmup, args.threads)
    acc = accuracy(model, encoders, decoders, args.iou_images, args.threads)
    result = {
        "name": name, "variant": arch.variant, "image_size": arch.image_size,
        "weights": args.checkpoint or "random init (seed 0)",
        "command": "flock /tmp/edgesam-bench.lock .venv/bin/python " + " ".join(map(shlex.quote, [sys.argv[0], *sys.argv[1:]])),
        "note": "shared 2-core machine: other processes may have been running; compare the ratios (interleaved runs)",
        "load_average_at_start": os.getloadavg(),
        "calibration": {"images": len(images), "source": calib, "method": cfg.calib_method},
        "export_s": export_s, "graph_bytes": sizes(bundle) | {p.name: p.stat().st_size for p in work.glob("encoder.*.onnx")},
        "export_checks": manifest["checks"], "latency": lat, **acc,
        "int8_settings": {"default": manifest["quantization"]["int8"] | {"excluded_nodes": len(manifest["quantization"]["int8"]["excluded_nodes"]["encoder"])},
                          **VARIANTS},
        "environment": toolchain_environment(),
    }
    out = REPO / "benchmarks" / "export" / "results"
    write_json_atomic(out / f"{name}.json", result)
    write_text_atomic(out / f"{name}.md", to_markdown(result))
    combine(out)
    print(to_markdown(result))
    return 0


def combine(folder: Path) -> None:
    """benchmarks/export/results.json and results.md: every recorded run, side by side."""
    runs = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
    write_json_atomic(folder.parent / "results.json", runs)
    write_text_atomic(folder.parent / "results.md", "\n".join(to_markdown(r) for r in runs.values()))


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def to_markdown(r: dict) -> str:
    lines = [f"# Export benchmark: {r['name']}", "", f"Weights: {r['weights']}. Command:", "", f"    {r['command']}", "",
             f"{r['note']}. Load average at start: {r['load_average_at_start']}.", "",
             "| graph | encoder median s | speedup vs fp32 | mean IoU vs PyTorch | p5 | IoU vs GT |", "|---|---|---|---|---|---|"]
    for name, lat in r["latency"].items():
        ref, gt = r["iou_vs_pytorch"][name], r["iou_vs_ground_truth"][name]
        lines.append(f"| {name} | {lat['median_s']:.3f} | {lat['speedup_vs_fp32']:.2f}x | {_f(ref['mean'])} | {_f(ref['p5'])} "
                     f"| {_f(gt['mean'])} |")
    lines += ["", f"PyTorch fp32 IoU vs ground truth: {r['iou_vs_ground_truth']['pytorch']['mean']:.4f} "
              f"(n = {r['iou_vs_ground_truth']['pytorch']['n']} objects; {r.get('empty_reference_masks', '?')} "
              f"PyTorch masks empty)", "", "Graph sizes (bytes):", ""]
    lines += [f"- {k}: {v:,}" for k, v in r["graph_bytes"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
