"""CPU backends side by side: ONNX Runtime fp32 / int8 (shipped default and alternatives) and OpenVINO
fp32 / bf16 / int8 (NNCF, and alternatives), one bundle, one run, through `edgesam.runtime.Segmenter`.

For each configuration (a graph set of the bundle and the backend that runs it):
- encoder latency: median over every timed `encode` (configurations measured in turn, the order reversed
  on every pass so that load drift hits all of them alike), speed-up against ONNX Runtime fp32;
- accuracy against ONNX Runtime fp32 on magnetic-tile images with ground-truth box prompts: mask IoU
  over the masks whose fp32 answer is non-empty (two empty masks prove nothing; both counts are
  reported), and the relative embedding error mean|e - e_fp32| / mean|e_fp32|;
- cold start (Segmenter.open, OpenVINO's compiled-model cache warm after the first pass) and file sizes.
The target is the issue's: the fastest configuration at >= 1.8x ONNX Runtime fp32 on an AVX2-only CPU
(>= 3.0x where the CPU has VNNI or BF16 math), with mask IoU >= 0.97 against fp32.

The script takes the shared benchmark lock itself (/tmp/edgesam-bench.lock) for the whole run, and
records the CPU model, its instruction-set flags and the load average at start and end:

    .venv/bin/python benchmarks/cpu_backends/cpu_backends.py --variant vit_b --images 4 --passes 2

Models are random-init (seed 0): no pretrained weights can be downloaded here. The bundle and the
alternative graph sets are built once under --work and reused (delete the folder to rebuild).
"""
from __future__ import annotations

import argparse
import fcntl
import os
import shlex
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from edgesam.envinfo import environment, has_bf16_math, has_int8_dot, machine_state  # noqa: E402
from edgesam.utils.files import write_json_atomic, write_text_atomic  # noqa: E402

DATA = Path(os.environ.get("EDGESAM_MAGNETIC_TILE", REPO.parent / "shared" / "data" / "magnetic-tile"))
LOCK = "/tmp/edgesam-bench.lock"
BASELINE = "ort_fp32"
IOU_TARGET = 0.97
# name: (graph set, backend, what it is)
CONFIGS = {
    "ort_fp32": ("fp32", "onnxruntime", "ONNX Runtime, the bundle's fp32 ONNX"),
    "ort_int8": ("int8", "onnxruntime", "ONNX Runtime, the bundle's int8 (shipped default mode)"),
    "ort_int8_static": ("alt_int8_static", "onnxruntime", "ONNX Runtime, static QDQ int8 (calibrated)"),
    "ort_int8_dynamic": ("alt_int8_dynamic", "onnxruntime", "ONNX Runtime, dynamic int8 (MatMul weights)"),
    "ort_int8_static_linear": ("alt_int8_static_linear", "onnxruntime",
                               "ONNX Runtime, static QDQ int8, attention MatMuls float"),
    "ov_on_ort_int8": ("alt_int8_static", "openvino", "OpenVINO running the static QDQ ONNX graph"),
    "ov_fp32": ("ov_fp32", "openvino", "OpenVINO IR fp32"),
    "ov_bf16": ("ov_bf16", "openvino", "OpenVINO IR, bf16 inference precision"),
    "ov_int8": ("ov_int8", "openvino", "OpenVINO IR, NNCF int8 (transformer, mixed preset)"),
    "ov_int8_attn_float": ("alt_ov_int8_attn_float", "openvino", "OpenVINO IR, NNCF int8, attention MatMuls float"),
    "ov_int8_weights": ("alt_ov_int8_weights", "openvino",
                        "OpenVINO IR, int8 weights only (NNCF compress_weights), activations float"),
}


@contextmanager
def bench_lock(path: str):
    with open(path, "a") as handle:
        print(f"waiting for the benchmark lock {path}", file=sys.stderr, flush=True)
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- build ---------------------------------------------------------------------------------------
def build_bundle(work: Path, variant: str, image_size: int | None, calib_images: int) -> Path:
    """Random-init model (seed 0) -> bundle with ONNX fp32/int8 and OpenVINO fp32/bf16/int8."""
    import torch

    from edgesam.export import ExportConfig, export_bundle
    from edgesam.models import create_model

    bundle = work / "bundle"
    if (bundle / "manifest.json").is_file():
        return bundle
    torch.manual_seed(0)
    model = create_model(variant, image_size=image_size).eval()
    config = ExportConfig(formats=("onnx", "openvino"), precisions=("fp32", "int8", "bf16"),
                          calib_data=str(DATA / "free" / "images"), calib_max_images=calib_images,
                          calib_cache=str(work / "calib_cache"))
    export_bundle(model, bundle, config)
    return bundle


def add_alternatives(bundle: Path, wanted: set[str], log=print) -> None:
    """Alternative int8 graph sets (alt_*) added to the bundle's manifest, built with the library's own
    quantizers; each reuses the set's fp32 decoder."""
    from edgesam import manifest as mf
    from edgesam.export import ExportConfig
    from edgesam.export.openvino import ir_entry, quantize_encoder, save_ir
    from edgesam.export.quantize import quantize_dynamic_graph, quantize_graph
    from edgesam.export.calibration import ImageCalibrationReader, calibration_digest, resolve_calibration_images

    manifest = mf.read_manifest(bundle)
    base = ExportConfig.from_dict(manifest["export_config"])
    images = resolve_calibration_images(base.calib_data, base.calib_max_images)
    size = manifest["model"]["image_size"]
    onnx_decoder = manifest["graphs"]["fp32"]["decoder"]
    ov_decoder = manifest["graphs"]["ov_fp32"]["decoder"]
    todo = {CONFIGS[n][0] for n in wanted if CONFIGS[n][0].startswith("alt_")} - set(manifest["graphs"])
    for name in sorted(todo):
        log(f"building {name}")
        if name == "alt_int8_dynamic":
            quantize_dynamic_graph(bundle / "encoder.onnx", bundle / f"encoder.{name}.onnx", base, log)
        elif name.startswith("alt_int8_static"):
            config = base.replace(int8_matmul_const_only=name.endswith("_linear"))
            quantize_graph(bundle / "encoder.onnx", bundle / f"encoder.{name}.onnx", ImageCalibrationReader(images, size),
                           config, calibration_digest(images), log)
        if name.startswith("alt_int8"):
            encoder = mf.graph_entry(bundle, f"encoder.{name}.onnx", "onnx", "int8")
            manifest["graphs"][name] = {"encoder": encoder, "decoder": dict(onnx_decoder)}
            continue
        import nncf
        import openvino as ov

        model = ov.convert_model(str(bundle / "encoder.onnx"))
        if name == "alt_ov_int8_attn_float":
            model, _ = quantize_encoder(model, bundle / "encoder.onnx", base.replace(int8_matmul_const_only=True),
                                        images, size, log)
        else:
            model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        files = save_ir(model, bundle / f"encoder.{name}.xml", compress_to_fp16=False)
        manifest["graphs"][name] = {"encoder": ir_entry(bundle, files, "int8", "fp32"), "decoder": dict(ov_decoder)}
    if todo:
        mf.write_manifest(bundle, manifest)


# --- measure -------------------------------------------------------------------------------------
def plan(images: int, seed: int = 0):
    from edgesam.bench.plan import build_plan

    return build_plan(str(DATA), images, "box", seed)


def sizes(bundle: Path, manifest: dict, graph_set: str) -> int:
    entry = manifest["graphs"][graph_set]["encoder"]
    return entry["bytes"] + sum(e["bytes"] for e in entry.get("external_data", []))


def run_config(bundle: Path, graph_set: str, backend: str, items, threads: int | None, warmup: int):
    """Open, warm up, encode + segment every item once: (open ms, [encoder ms], embeddings, masks)."""
    from edgesam.runtime import Segmenter

    start = time.perf_counter()
    seg = Segmenter.open(bundle, graph_set=graph_set, backend=backend, threads=threads, warmup=False)
    open_ms = (time.perf_counter() - start) * 1e3
    for _ in range(warmup):
        seg.encode(items[0].image)
    times, embeddings, masks = [], [], []
    for item in items:
        emb = seg.encode(item.image)
        result = seg.segment(emb, **item.prompt_kwargs)
        # in ROI mode the encoder runs inside segment: its time is in the result's timings
        times.append(emb.timings.get("encoder_ms", 0.0) + result.timings.get("encoder_ms", 0.0))
        embeddings.append(np.array(emb.features))
        masks.append(result.masks[:, 0])
    precision = getattr(seg.backend, "execution_precision", {}).get("encoder", "")
    return open_ms, times, embeddings, masks, seg.providers, precision


def accuracy(ref_embeddings, ref_masks, embeddings, masks) -> dict:
    ious, empty_ref, empty_got = [], 0, 0
    for ref_set, got_set in zip(ref_masks, masks):
        for ref, got in zip(ref_set, got_set):
            if not ref.any():
                empty_ref += 1  # two empty masks give IoU 1.0 and prove nothing: not counted
                continue
            empty_got += int(not got.any())
            ious.append(float((ref & got).sum() / (ref | got).sum()))
    rel = [float(np.abs(e - r).mean() / max(np.abs(r).mean(), 1e-12)) for e, r in zip(embeddings, ref_embeddings)]
    return {"mask_iou_mean": float(np.mean(ious)) if ious else None, "mask_iou_min": float(np.min(ious)) if ious else None,
            "masks_compared": len(ious), "empty_fp32_masks": empty_ref, "empty_masks_where_fp32_not": empty_got,
            "embedding_rel_err": float(np.mean(rel))}


def measure(bundle: Path, names: list[str], items, passes: int, warmup: int, threads: int | None, log=print) -> dict:
    from edgesam import manifest as mf

    manifest = mf.read_manifest(bundle)
    rows = {n: {"encoder_ms": [], "open_ms": []} for n in names}
    ref = None
    for p in range(passes):
        order = names if p % 2 == 0 else names[::-1]
        for name in order:
            graph_set, backend, _ = CONFIGS[name]
            open_ms, times, embeddings, masks, providers, precision = run_config(bundle, graph_set, backend, items,
                                                                               threads, warmup)
            rows[name]["encoder_ms"] += times
            rows[name]["open_ms"].append(open_ms)
            if p == 0:
                rows[name].update(providers=providers, executed_as=precision, _embeddings=embeddings, _masks=masks)
                if name == BASELINE:
                    ref = (embeddings, masks)
            log(f"pass {p + 1} {name}: encoder median {statistics.median(times):.0f} ms, open {open_ms:.0f} ms")
    base = statistics.median(rows[BASELINE]["encoder_ms"])
    out = {}
    for name in names:
        row = rows[name]
        median = statistics.median(row["encoder_ms"])
        graph_set, backend, what = CONFIGS[name]
        out[name] = {
            "what": what, "graph_set": graph_set, "backend": backend, "providers": row["providers"],
            "executed_as": row["executed_as"], "encoder_ms_median": median, "encoder_ms": row["encoder_ms"],
            "speedup_vs_ort_fp32": base / median, "cold_start_ms": row["open_ms"],
            "encoder_bytes": sizes(bundle, manifest, graph_set),
            **accuracy(ref[0], ref[1], row.pop("_embeddings"), row.pop("_masks")),
        }
    return out


def verdict(rows: dict, cpu: dict) -> dict:
    fast_cpu = has_int8_dot(cpu) or has_bf16_math(cpu)
    target = 3.0 if fast_cpu else 1.8
    ok = {n: r for n, r in rows.items() if n != BASELINE and r["mask_iou_mean"] is not None
          and r["mask_iou_mean"] >= IOU_TARGET}
    best = max(ok, key=lambda n: ok[n]["speedup_vs_ort_fp32"]) if ok else None
    return {"cpu_class": "VNNI/BF16" if fast_cpu else "AVX2-only", "target_speedup": target, "iou_target": IOU_TARGET,
            "fastest_within_iou": best, "speedup": ok[best]["speedup_vs_ort_fp32"] if best else None,
            "met": bool(best and ok[best]["speedup_vs_ort_fp32"] >= target)}


def to_markdown(r: dict) -> str:
    v = r["verdict"]
    lines = [f"# CPU backends: {r['name']}", "", f"Weights: {r['weights']}. Command:", "", f"    {r['command']}", "",
             f"CPU: {r['machine_start']['cpu_line']} ({r['machine_start']['cpu']['logical_cpus']} logical CPUs). "
             f"Load average at start {r['machine_start']['load_average']}, at end {r['machine_end']['load_average']}.",
             f"{len(r['images'])} magnetic-tile images, {r['passes']} passes, threads {r['threads'] or 'all'}; "
             f"{r['note']}", "",
             "| configuration | encoder ms (median) | vs ORT fp32 | mask IoU vs fp32 (mean / min, n) | rel. embedding error "
             "| ran as | encoder MB | cold start ms |", "|---|---|---|---|---|---|---|---|"]
    for name, row in sorted(r["rows"].items(), key=lambda kv: kv[1]["encoder_ms_median"]):
        iou = "-" if row["mask_iou_mean"] is None else f"{row['mask_iou_mean']:.4f} / {row['mask_iou_min']:.4f}, {row['masks_compared']}"
        lines.append(f"| {name}: {row['what']} | {row['encoder_ms_median']:.0f} | {row['speedup_vs_ort_fp32']:.2f}x | {iou} | "
                     f"{row['embedding_rel_err']:.4f} | {row['backend']} {row['executed_as']} | "
                     f"{row['encoder_bytes'] / 1e6:.0f} | {', '.join(f'{t:.0f}' for t in row['cold_start_ms'])} |")
    any_row = next(iter(r["rows"].values()))
    lines += ["", f"fp32 masks that are empty (not counted in IoU): {any_row['empty_fp32_masks']}.", "",
              f"Target ({v['cpu_class']} CPU): fastest configuration with mask IoU >= {v['iou_target']} at >= "
              f"{v['target_speedup']}x ORT fp32: **{'met' if v['met'] else 'not met'}** "
              f"({v['fastest_within_iou']}: {v['speedup'] and round(v['speedup'], 2)}x)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="vit_b")
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--images", type=int, default=4, help="magnetic-tile images (with objects) per pass")
    ap.add_argument("--passes", type=int, default=2, help="passes over all configurations (order reversed each pass)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, help="threads per backend (default: all cores)")
    ap.add_argument("--calib-images", type=int, default=8)
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, from {', '.join(CONFIGS)}")
    ap.add_argument("--work", default="/tmp/edgesam-cpu-backends")
    ap.add_argument("--name")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "cpu_backends" / "results"))
    ap.add_argument("--lock", default=LOCK)
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = set(names) - set(CONFIGS)
    if unknown or BASELINE not in names:
        ap.error(f"--configs: unknown {sorted(unknown)} or {BASELINE} missing; choose from {', '.join(CONFIGS)}")
    name = args.name or f"{args.variant}_{args.image_size or 'default'}_random"
    work = Path(args.work) / name
    work.mkdir(parents=True, exist_ok=True)
    command = ".venv/bin/python " + " ".join(map(shlex.quote, [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]))
    with bench_lock(args.lock):
        start_state = machine_state()
        t0 = time.perf_counter()
        bundle = build_bundle(work, args.variant, args.image_size, args.calib_images)
        add_alternatives(bundle, set(names))
        build_s = time.perf_counter() - t0
        items = plan(args.images)
        rows = measure(bundle, names, items, args.passes, args.warmup, args.threads)
        end_state = machine_state()
    result = {
        "name": name, "variant": args.variant, "weights": "random init (seed 0)", "command": command,
        "note": "configurations measured in turn within each pass, order reversed every pass; on a shared machine "
                "compare the ratios, not the milliseconds",
        "images": [i.name for i in items], "passes": args.passes, "threads": args.threads, "build_s": build_s,
        "machine_start": start_state, "machine_end": end_state, "rows": rows,
        "verdict": verdict(rows, start_state["cpu"]), "environment": environment(with_torch=False),
    }
    out = Path(args.out)
    write_json_atomic(out / f"{name}.json", result)
    write_text_atomic(out / f"{name}.md", to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
