"""CPU configurations side by side: ONNX Runtime fp32 against every other way the CPU can run the
same model (ONNX Runtime int8 variants, OpenVINO fp32 / bf16 / int8), one bundle, one process,
through `edgesam_runtime.Segmenter` as line software calls it.

For each configuration (a graph set of the bundle and the backend that runs it):
- encoder latency: median over every timed image of every pass (configurations measured in turn,
  the order reversed on every pass so that load drift hits all of them alike), and the speed-up
  against ONNX Runtime fp32; end to end per box prompt (encode + segment over the prompts: for a
  ROI-framed model, crop, encode, decode and map back) likewise;
- accuracy against ONNX Runtime fp32 on magnetic-tile images with one ground-truth box prompt per
  defect: mask IoU counted only where the fp32 mask is non-empty (two empty masks prove nothing; the
  share of non-empty fp32 masks is reported beside it), masks that went empty where fp32's was not,
  task mIoU against the ground truth (and its difference to fp32 in points), and the relative
  embedding error mean|e - e_fp32| / mean|e_fp32| (whole-image models);
- cold start (Segmenter.open; OpenVINO's compiled-model cache is warm after the first pass), bytes.

Each configuration is warmed on the first image until its timings settle (`edgesam_runtime.timing.warm_until_settled`:
the last 3 calls within 10 % of their median) before its pass is timed, with every usable core
(the runtime's default) unless --threads is given; the spread of the timed calls is reported.

Targets (checked in the results): the fastest configuration with mask IoU >= 0.97 against fp32 at
>= 3.5x ONNX Runtime fp32 encoder time on a CPU with VNNI or BF16 math (stretch 4x), >= 1.8x on an
AVX2-only CPU; for a ROI-framed model, >= 2x end to end per box prompt with task mIoU within 0.5
point of fp32 (the per-box figure with 8 boxes per frame, against today's code: roi_per_box.py).

Every results file records the CPU model, its instruction-set flags and the load average at start
and end. The script holds /tmp/edgesam-bench.lock for the whole run (it takes the lock itself; under
`flock /tmp/edgesam-bench.lock ...` it sees its parent holds it and runs):

    .venv/bin/python benchmarks/cpu_backends/cpu_backends.py --variant vit_b --images 4 --passes 3
    .venv/bin/python benchmarks/cpu_backends/cpu_backends.py --checkpoint runs/roi/best.pth --name roi_small
    .venv/bin/python benchmarks/cpu_backends/cpu_backends.py --smoke        # vit_t at 64 px, a minute

Without --checkpoint the model is random-init (seed 0): no pretrained weights can be downloaded
here. The bundle and the alternative graph sets are built once under --work and reused (delete the
folder to rebuild). --smoke writes its results under --work, never into the repository.
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

from benchmarks.records import LOCK  # noqa: E402  (re-exported: the cpu_backends scripts import it from here)
from edgesam_runtime.envinfo import environment, has_bf16_math, has_int8_dot, machine_state, threads_line  # noqa: E402
from edgesam_runtime.files import write_json_atomic, write_text_atomic  # noqa: E402
from edgesam_runtime.timing import ms_since, spread, warm_until_settled  # noqa: E402

DATA = Path(os.environ.get("EDGESAM_MAGNETIC_TILE", REPO.parent / "shared" / "data" / "magnetic-tile"))
BASELINE = "ort_fp32"
IOU_TARGET = 0.97
TASK_MIOU_POINTS = 0.5  # ROI target: task mIoU within this many points (of 100) of fp32
TARGET_FAST_CPU, STRETCH_FAST_CPU, TARGET_AVX2 = 3.5, 4.0, 1.8  # whole-image encoder speed-up over ORT fp32
# name: (graph set, backend, what it is)
CONFIGS = {
    "ort_fp32": ("fp32", "onnxruntime", "ONNX Runtime, the bundle's fp32 ONNX"),
    "ort_int8": ("int8", "onnxruntime", "ONNX Runtime, the bundle's int8 (static QDQ, calibrated)"),
    "ort_int8_dynamic": ("alt_int8_dynamic", "onnxruntime", "ONNX Runtime, dynamic int8 (MatMul weights)"),
    "ort_int8_static_linear": ("alt_int8_static_linear", "onnxruntime",
                               "ONNX Runtime, static QDQ int8, attention MatMuls float"),
    "ov_on_ort_int8": ("int8", "openvino", "OpenVINO running the bundle's int8 QDQ ONNX, float parts bf16 where the CPU has it"),
    "ov_fp32": ("ov_fp32", "openvino", "OpenVINO IR fp32"),
    "ov_bf16": ("ov_bf16", "openvino", "OpenVINO IR, bf16 inference precision"),
    "ov_int8": ("ov_int8", "openvino", "OpenVINO IR, NNCF int8 (transformer, mixed preset), float parts bf16 where the CPU has it"),
    "ov_int8_fp32_float": ("alt_ov_int8_fp32_float", "openvino", "OpenVINO IR, NNCF int8, float parts fp32"),
    "ov_int8_attn_float": ("alt_ov_int8_attn_float", "openvino", "OpenVINO IR, NNCF int8, attention MatMuls float"),
    "ov_int8_weights": ("alt_ov_int8_weights", "openvino",
                        "OpenVINO IR, int8 weights only (NNCF compress_weights), activations float"),
}


def _parent_holds(path: str) -> bool:
    """True when this process runs under `flock PATH ...`, directly or through a shell script (taking the
    lock again would wait forever)."""
    pid = os.getppid()
    for _ in range(8):  # a few ancestors: flock -> bash script -> python
        try:
            words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False
        if words and Path(os.fsdecode(words[0])).name == "flock" and path.encode() in words:
            return True
        parent = [line.split()[1] for line in status.splitlines() if line.startswith("PPid:")]
        if not parent or int(parent[0]) <= 1:
            return False
        pid = int(parent[0])
    return False


@contextmanager
def bench_lock(path: str = LOCK):
    """Hold the shared benchmark lock: no two benchmarks (or CPU-heavy builds) overlap."""
    if _parent_holds(path):
        yield
        return
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for the benchmark lock {path}", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def command_line(argv) -> str:
    return ".venv/bin/python " + " ".join(map(shlex.quote, [sys.argv[0], *(sys.argv[1:] if argv is None else argv)]))


def calibration_folder(data: Path) -> Path:
    """Defect-free line images when the dataset has them (magnetic-tile's free/), else the dataset."""
    free = data / "free" / "images"
    return free if free.is_dir() else data


# --- build ---------------------------------------------------------------------------------------
def build_bundle(work: Path, variant: str, image_size: int | None, checkpoint: str | None, calib_images: int,
                 data: Path) -> Path:
    """The model (a checkpoint, else random init with seed 0) -> bundle with ONNX fp32 / static int8
    and OpenVINO fp32 / bf16 / int8."""
    import torch

    from edgesam.export import ExportConfig, export_bundle
    from edgesam.models import create_model

    bundle = work / "bundle"
    if (bundle / "manifest.json").is_file():
        return bundle
    config = ExportConfig(formats=("onnx", "openvino"), precisions=("fp32", "int8", "bf16"), int8_mode="static",
                          calib_data=str(calibration_folder(data)), calib_max_images=calib_images,
                          calib_cache=str(work / "calib_cache"))
    if checkpoint:
        export_bundle(checkpoint, bundle, config)
        return bundle
    torch.manual_seed(0)
    model = create_model(variant, image_size=image_size).eval()
    export_bundle(model, bundle, config)
    return bundle


def add_alternatives(bundle: Path, wanted: set[str], log=print) -> None:
    """Alternative int8 graph sets (alt_*) added to the bundle's manifest, built with the library's own
    quantizers from the bundle's export settings; each reuses its format's fp32 decoder."""
    from edgesam_runtime import manifest as mf
    from edgesam.export import ExportConfig
    from edgesam.export.calibration import ImageCalibrationReader, calibration_digest, resolve_calibration_images
    from edgesam.export.openvino import ir_entry, quantize_encoder, save_ir
    from edgesam.export.quantize import quantize_dynamic_graph, quantize_graph

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
        elif name == "alt_int8_static_linear":
            quantize_graph(bundle / "encoder.onnx", bundle / f"encoder.{name}.onnx", ImageCalibrationReader(images, size),
                           base.replace(int8_matmul_const_only=True), calibration_digest(images), log)
        if name.startswith("alt_int8"):
            encoder = mf.graph_entry(bundle, f"encoder.{name}.onnx", "onnx", "int8")
            manifest["graphs"][name] = {"encoder": encoder, "decoder": dict(onnx_decoder)}
            continue
        if name == "alt_ov_int8_fp32_float":  # the same int8 IR, its float parts asked to run in fp32
            entries = {part: dict(manifest["graphs"]["ov_int8"][part]) for part in ("encoder", "decoder")}
            for entry in entries.values():
                entry["openvino"] = {**entry["openvino"], "inference_precision": "fp32"}
            manifest["graphs"][name] = entries
            continue
        import nncf
        import openvino as ov

        model = ov.convert_model(str(bundle / "encoder.onnx"))
        if name == "alt_ov_int8_attn_float":
            model, _ = quantize_encoder(model, bundle / "encoder.onnx", base.replace(int8_matmul_const_only=True),
                                        images, size, log)
        else:
            from edgesam.export.openvino import quiet_nncf

            with quiet_nncf():
                model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        files = save_ir(model, bundle / f"encoder.{name}.xml", compress_to_fp16=False)
        manifest["graphs"][name] = {"encoder": ir_entry(bundle, files, "int8", "fp32"), "decoder": dict(ov_decoder)}
    if todo:
        mf.write_manifest(bundle, manifest)


# --- measure -------------------------------------------------------------------------------------
def prompt_plan(data: Path, images: int, seed: int = 0):
    """One ground-truth box per defect on `images` labelled images (the plan `edgesam eval` draws)."""
    from edgesam.eval import build_plan
    from edgesam.eval.split import scoring_set

    return build_plan(scoring_set(str(data)), "box", seed=seed, max_images=images)


class _Recording:
    """The runtime adapter of `edgesam.eval`, keeping each image's embedding and timings."""

    def __init__(self, segmenter):
        from edgesam.eval.adapters import SegmenterAdapter

        self.adapter, self.name = SegmenterAdapter(segmenter), segmenter.info.graph_set
        self.embeddings = []

    def encode(self, image):
        embedding, timings = self.adapter.encode(image)
        self.embeddings.append(None if embedding.features is None else np.array(embedding.features))
        return embedding, timings

    def segment(self, embedding, item):
        return self.adapter.segment(embedding, item)


def run_config(bundle: Path, graph_set: str, backend: str, plan, threads: int | None, warmup: int) -> dict:
    """Open, warm up until the timings settle (at least `warmup` calls), then every image of the plan once
    through the one scorer of `edgesam.eval`."""
    from edgesam.eval.scoring import score
    from edgesam_runtime import Segmenter

    start = time.perf_counter()
    seg = Segmenter.open(bundle, graph_set=graph_set, backend=backend, threads=threads, warmup=False)
    open_ms = ms_since(start)
    first_item, first = next(plan.samples())
    warm = warm_until_settled(lambda: seg.segment(seg.encode(first.image), boxes=first_item.boxes),
                              min_calls=max(warmup, 3))
    predictor = _Recording(seg)
    encoder_ms, e2e_ms = [], []

    def on_call(item, enc, segm):
        # ROI framing encodes the crops inside segment: its encoder time is in the segment timings
        encoder_ms.append(enc.get("encoder_ms", 0.0) + segm.get("encoder_ms", 0.0))
        e2e_ms.append((enc["encode_ms"] + segm["segment_ms"]) / item.num_prompts)

    records = score(predictor, plan, keep_masks=True, on_call=on_call)
    from edgesam.bench.formats import ran_as

    executed = getattr(seg.backend, "execution_precision", None)
    executed = ran_as(seg.info.entry("encoder").get("precision", graph_set), executed["encoder"] if executed else None)
    return {"open_ms": open_ms, "encoder_ms": encoder_ms, "e2e_per_prompt_ms": e2e_ms, "records": records,
            "embeddings": predictor.embeddings, "providers": seg.providers, "executed_as": executed,
            "roi": seg.info.framing.roi, "warmup": warm}


def agreement_with_fp32(reference: list, records: list) -> dict:
    """Mask IoU against fp32 where the fp32 mask is non-empty, and the masks that went empty."""
    ious, went_empty = [], 0
    for ref, got in zip(reference, records):
        if ref.pred_empty:
            continue  # an IoU against an empty fp32 mask proves nothing: left out, counted below
        went_empty += int(got.pred_empty)
        ious.append(float((ref.mask & got.mask).sum() / (ref.mask | got.mask).sum()))
    total = len(reference)
    return {"mask_iou_mean": float(np.mean(ious)) if ious else None, "mask_iou_min": float(np.min(ious)) if ious else None,
            "masks_compared": len(ious), "masks_total": total, "fp32_nonempty_share": len(ious) / max(total, 1),
            "empty_where_fp32_not": went_empty}


def task_miou(records: list) -> float:
    return float(np.nanmean([r.iou for r in records]))


def embedding_error(reference: list, embeddings: list) -> float | None:
    pairs = [(e, r) for e, r in zip(embeddings, reference) if e is not None and r is not None]
    if not pairs:
        return None  # ROI framing: embeddings are per crop, inside segment
    return float(np.mean([np.abs(e - r).mean() / max(np.abs(r).mean(), 1e-12) for e, r in pairs]))


def measure(bundle: Path, names: list[str], plan, passes: int, warmup: int, threads: int | None, log=print) -> dict:
    from edgesam_runtime import manifest as mf

    manifest = mf.read_manifest(bundle)
    runs = {n: {"encoder_ms": [], "e2e_per_prompt_ms": [], "open_ms": [], "warmup": []} for n in names}
    for p in range(passes):
        for name in (names if p % 2 == 0 else names[::-1]):
            graph_set, backend, _ = CONFIGS[name]
            got = run_config(bundle, graph_set, backend, plan, threads, warmup)
            for key in ("encoder_ms", "e2e_per_prompt_ms"):
                runs[name][key] += got[key]
            runs[name]["open_ms"].append(got["open_ms"])
            runs[name]["warmup"].append(got["warmup"])
            if "records" not in runs[name]:  # accuracy from the first pass (outputs do not change)
                runs[name].update({k: got[k] for k in ("records", "embeddings", "providers", "executed_as", "roi")})
            log(f"pass {p + 1} {name}: encoder median {statistics.median(got['encoder_ms']):.0f} ms, "
                f"open {got['open_ms']:.0f} ms, warm-up {got['warmup']['calls']} calls", flush=True)
    base = runs[BASELINE]
    base_enc, base_e2e = statistics.median(base["encoder_ms"]), statistics.median(base["e2e_per_prompt_ms"])
    out = {}
    for name in names:
        run = runs[name]
        graph_set, backend, what = CONFIGS[name]
        enc, e2e = statistics.median(run["encoder_ms"]), statistics.median(run["e2e_per_prompt_ms"])
        out[name] = {
            "what": what, "graph_set": graph_set, "backend": backend, "providers": run["providers"],
            "executed_as": run["executed_as"], "roi": run["roi"],
            "encoder_ms_median": enc, "encoder_ms": run["encoder_ms"], "speedup_vs_ort_fp32": base_enc / enc,
            "encoder_spread": spread(run["encoder_ms"]), "warmup": run["warmup"],
            "e2e_per_prompt_ms_median": e2e, "e2e_speedup_vs_ort_fp32": base_e2e / e2e,
            "cold_start_ms": run["open_ms"], "encoder_bytes": encoder_bytes(manifest, graph_set),
            **agreement_with_fp32(base["records"], run["records"]),
            "task_miou": task_miou(run["records"]),
            "task_miou_points_vs_fp32": 100 * (task_miou(run["records"]) - task_miou(base["records"])),
            "embedding_rel_err": embedding_error(base["embeddings"], run["embeddings"]),
        }
    return out


def encoder_bytes(manifest: dict, graph_set: str) -> int:
    entry = manifest["graphs"][graph_set]["encoder"]
    return entry["bytes"] + sum(e["bytes"] for e in entry.get("external_data", []))


def verdict(rows: dict, cpu: dict) -> dict:
    """The issue's targets: encoder speed-up for whole-image models, end to end per box for ROI ones."""
    roi = rows[BASELINE]["roi"]
    fast_cpu = has_int8_dot(cpu) or has_bf16_math(cpu)
    target = 2.0 if roi else (TARGET_FAST_CPU if fast_cpu else TARGET_AVX2)
    speed = "e2e_speedup_vs_ort_fp32" if roi else "speedup_vs_ort_fp32"

    def accurate(row) -> bool:
        if row["mask_iou_mean"] is None or row["mask_iou_mean"] < IOU_TARGET:
            return False
        return not roi or abs(row["task_miou_points_vs_fp32"]) <= TASK_MIOU_POINTS

    ok = {n: r for n, r in rows.items() if n != BASELINE and accurate(r)}
    best = max(ok, key=lambda n: ok[n][speed]) if ok else None
    return {"cpu_class": "VNNI/BF16" if fast_cpu else "AVX2-only", "model": "ROI-framed" if roi else "whole-image",
            "figure": speed, "target_speedup": target, "iou_target": IOU_TARGET,
            "task_miou_points": TASK_MIOU_POINTS if roi else None, "fastest_within_accuracy": best,
            "speedup": ok[best][speed] if best else None, "met": bool(best and ok[best][speed] >= target),
            "stretch": None if roi or not fast_cpu else STRETCH_FAST_CPU,
            "stretch_met": bool(best and not roi and fast_cpu and ok[best][speed] >= STRETCH_FAST_CPU),
            "fp32_nonempty_share": rows[BASELINE]["fp32_nonempty_share"]}


def _iou_cell(row: dict) -> str:
    if row["mask_iou_mean"] is None:
        return "- (no non-empty fp32 mask)"
    return f"{row['mask_iou_mean']:.4f} / {row['mask_iou_min']:.4f}, {row['masks_compared']}"


def to_markdown(r: dict) -> str:
    v = r["verdict"]
    start, end = r["machine_start"], r["machine_end"]
    lines = [f"# CPU configurations: {r['name']}", "", f"Model: {r['model']}. Command:", "", f"    {r['command']}", "",
             f"CPU: {start['cpu_line']} (isa {start['cpu']['isa']}, {start['cpu']['logical_cpus']} logical CPUs). "
             f"Load average at start {start['load_average']}, at end {end['load_average']}.",
             f"Threads: {threads_line(start['threads'])}.",
             f"{len(r['images'])} images, {r['prompts']} box prompts (one per ground-truth defect), {r['passes']} passes, "
             f"threads {r['threads'] or 'all'}; {r['note']}", "",
             "| configuration | encoder ms (median) | spread | vs ORT fp32 | per box end to end ms | vs ORT fp32 "
             "| mask IoU vs fp32 (mean / min, n) | task mIoU (pts vs fp32) | rel. embedding error | ran as "
             "| encoder MB | cold start ms | warm-up calls |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in sorted(r["rows"].items(), key=lambda kv: kv[1]["encoder_ms_median"]):
        err = "-" if row["embedding_rel_err"] is None else f"{row['embedding_rel_err']:.4f}"
        lines.append(
            f"| {name}: {row['what']} | {row['encoder_ms_median']:.0f} | {row['encoder_spread']:.0%} | "
            f"{row['speedup_vs_ort_fp32']:.2f}x | "
            f"{row['e2e_per_prompt_ms_median']:.1f} | {row['e2e_speedup_vs_ort_fp32']:.2f}x | {_iou_cell(row)} | "
            f"{row['task_miou']:.4f} ({row['task_miou_points_vs_fp32']:+.2f}) | {err} | "
            f"{row['backend']} {row['executed_as']} | {row['encoder_bytes'] / 1e6:.0f} | "
            f"{', '.join(f'{t:.0f}' for t in row['cold_start_ms'])} | "
            f"{', '.join(str(w['calls']) + ('' if w['settled'] else ' (unsettled)') for w in row['warmup'])} |")
    base = r["rows"][BASELINE]
    lines += ["", f"Mask IoU counts only prompts whose ONNX Runtime fp32 mask is non-empty: "
              f"{base['masks_compared']} of {base['masks_total']} ({base['fp32_nonempty_share']:.0%}). "
              "A configuration's masks that went empty where fp32's was not: "
              + ", ".join(f"{n} {row['empty_where_fp32_not']}" for n, row in r["rows"].items()) + ".", "",
              f"Target ({v['model']} model, {v['cpu_class']} CPU): fastest configuration with mask IoU >= "
              f"{v['iou_target']}" + (f" and task mIoU within {v['task_miou_points']} point" if v["task_miou_points"] else "")
              + f" at >= {v['target_speedup']}x ONNX Runtime fp32 ({v['figure']}): **{'met' if v['met'] else 'not met'}** "
              f"({v['fastest_within_accuracy']}: {v['speedup'] and round(v['speedup'], 2)}x)"
              + (f"; stretch {v['stretch']}x: {'met' if v['stretch_met'] else 'not met'}." if v.get("stretch") else "."),
              "", "Each configuration was warmed on the first image until its timings settled (last 3 calls within "
              "10 % of their median; `warm-up calls` per pass) before it was timed; `spread` is (p95 - p5) / p50 of "
              "its timed encoder calls."]
    if r.get("smoke"):
        lines += ["", "SMOKE RUN (tiny model, tiny images): checks that the script works; the figures mean nothing."]
    return "\n".join(lines) + "\n"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="vit_b")
    ap.add_argument("--image-size", type=int, help="default: the variant's (1024 for vit_b)")
    ap.add_argument("--checkpoint", help="a trained checkpoint (e.g. the ROI recipe's) instead of random init")
    ap.add_argument("--data", default=str(DATA), help="labelled images (magnetic-tile); calibration from its free/")
    ap.add_argument("--images", type=int, default=4, help="labelled images per pass (one box per defect)")
    ap.add_argument("--passes", type=int, default=3, help="passes over all configurations (order reversed each pass)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, help="threads per backend (default: the runtime's, every usable core)")
    ap.add_argument("--calib-images", type=int, default=8)
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, from {', '.join(CONFIGS)}")
    ap.add_argument("--work", default="/tmp/edgesam-cpu-backends")
    ap.add_argument("--name")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "cpu_backends" / "results"))
    ap.add_argument("--lock", default=LOCK)
    ap.add_argument("--smoke", action="store_true",
                    help="vit_t at 64 px, 2 images, 1 pass, 2 calibration images; results under --work")
    args = ap.parse_args(argv)
    if args.smoke:
        args.variant, args.image_size, args.images, args.passes, args.calib_images = "vit_t", 64, 2, 1, 2
        args.work = str(Path(args.work) / "smoke")
        args.out = args.work
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = set(names) - set(CONFIGS)
    if unknown or BASELINE not in names:
        ap.error(f"--configs: unknown {sorted(unknown)} or {BASELINE} missing; choose from {', '.join(CONFIGS)}")
    args.names = names
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    data = Path(args.data)
    if not data.is_dir():
        raise SystemExit(f"--data: {data} is not a folder (set EDGESAM_MAGNETIC_TILE or pass --data)")
    model = (f"checkpoint {args.checkpoint}" if args.checkpoint
             else f"{args.variant} at {args.image_size or 'its default size'}, random init (seed 0)")
    name = args.name or (f"{args.variant}_{args.image_size or 'default'}_random" if not args.checkpoint
                         else Path(args.checkpoint).stem)
    work = Path(args.work) / name
    work.mkdir(parents=True, exist_ok=True)
    with bench_lock(args.lock):
        start_state = machine_state(args.threads)
        t0 = time.perf_counter()
        bundle = build_bundle(work, args.variant, args.image_size, args.checkpoint, args.calib_images, data)
        add_alternatives(bundle, set(args.names))
        build_s = time.perf_counter() - t0
        plan = prompt_plan(data, args.images)
        measure_state = machine_state(args.threads)
        rows = measure(bundle, args.names, plan, args.passes, args.warmup, args.threads)
        end_state = machine_state(args.threads)
    result = {
        "name": name, "model": model, "command": command_line(argv), "smoke": args.smoke,
        "note": "configurations measured in turn within each pass, order reversed every pass; on a shared machine "
                "compare the ratios, not the milliseconds",
        "images": [item.key for item in plan], "prompts": plan.num_prompts, "passes": args.passes,
        "threads": args.threads, "build_s": build_s, "bundle": str(bundle),
        "machine_start": start_state, "machine_measure_start": measure_state, "machine_end": end_state,
        "rows": rows, "verdict": verdict(rows, start_state["cpu"]), "environment": environment(),
    }
    out = Path(args.out)
    write_json_atomic(out / f"{name}.json", result)
    write_text_atomic(out / f"{name}.md", to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
