"""Peak RAM of int8 calibration + quantization against the number of calibration images, one fresh
process per count, measured with `/usr/bin/time -v` (maximum resident set size):

- onnxruntime: the shipped static QDQ path (`quantize_graph`: pre-processing, streamed MinMax
  calibration, quantize_static), as `edgesam export --precision int8` runs it;
- openvino: NNCF post-training quantization of the encoder IR (`quantize_encoder`), as
  `edgesam export --format openvino --precision int8` runs it.

Memory does not depend on machine load, so these figures hold on a busy machine too (the wall time
does not: it is kept in the JSON only, with the load average).

    .venv/bin/python benchmarks/cpu_backends/calib_memory.py --variant vit_b --counts 1,8
    .venv/bin/python benchmarks/cpu_backends/calib_memory.py --smoke     # vit_t at 64 px, results under --work

The encoder is the fp32 graph of a random-init model (seed 0), exported once under --work.
Calibration images: magnetic-tile's defect-free free/images. The script holds the benchmark lock
(/tmp/edgesam-bench.lock) while it runs: calibration is CPU-heavy and would disturb timings.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.cpu_backends.cpu_backends import DATA, LOCK, bench_lock, calibration_folder, command_line  # noqa: E402
from edgesam_runtime.envinfo import environment, machine_state  # noqa: E402
from edgesam_runtime.files import write_json_atomic, write_text_atomic  # noqa: E402

LIMIT_GB = 4.0
CHILD = {
    "onnxruntime": """
import sys
from pathlib import Path
from edgesam.export import ExportConfig
from edgesam.export.calibration import ImageCalibrationReader, calibration_digest, resolve_calibration_images
from edgesam.export.quantize import quantize_graph
encoder, out, count, size, calib = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
config = ExportConfig(precisions=("fp32", "int8"), int8_mode="static", calib_data=calib, calib_max_images=count,
                      calib_cache=str(out) + ".no_cache")  # a fresh cache folder: calibrate, never reuse ranges
images = resolve_calibration_images(calib, count)
info = quantize_graph(encoder, Path(str(out) + ".onnx"), ImageCalibrationReader(images, size), config,
                      calibration_digest(images), print)
print("IMAGES", len(images), "QUANTIZERS", info["quantize_linear"])
""",
    "openvino": """
import sys
from pathlib import Path
import openvino as ov
from edgesam.export import ExportConfig
from edgesam.export.calibration import resolve_calibration_images
from edgesam.export.openvino import quantize_encoder, save_ir
encoder, out, count, size, calib = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
config = ExportConfig(formats=("openvino",), precisions=("int8",), calib_data=calib, calib_max_images=count)
images = resolve_calibration_images(calib, count)
model, _ = quantize_encoder(ov.convert_model(str(encoder)), encoder, config, images, size, print)
save_ir(model, Path(str(out) + ".xml"), compress_to_fp16=False)
fq = sum(op.get_type_name() == "FakeQuantize" for op in model.get_ordered_ops())
print("IMAGES", len(images), "QUANTIZERS", fq)
""",
}


def export_encoder(work: Path, variant: str, image_size: int | None) -> tuple[Path, int]:
    import torch

    from edgesam.export.onnx_export import export_encoder as export
    from edgesam.models import create_model

    path = work / "encoder.onnx"
    torch.manual_seed(0)
    model = create_model(variant, image_size=image_size).eval()
    size = model.image_encoder.img_size
    if not path.is_file():
        export(model, path)
    return path, size


def measure(backend: str, encoder: Path, size: int, count: int, work: Path, calib: Path) -> dict:
    out = work / f"encoder.{backend}.int8.n{count}"
    cmd = ["/usr/bin/time", "-v", sys.executable, "-c", CHILD[backend], str(encoder), str(out), str(count), str(size),
           str(calib)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "runtime")])}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{backend} calibration with {count} images failed:\n{proc.stderr[-3000:]}")
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    summary = re.search(r"IMAGES (\d+) QUANTIZERS (\d+)", proc.stdout)
    for leftover in work.glob(f"{out.name}.*"):
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    return {"backend": backend, "images": int(summary.group(1)), "quantizers": int(summary.group(2)),
            "max_rss_kb": kb, "max_rss_gb": kb * 1024 / 1e9, "wall_s_load_dependent": round(seconds, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="vit_b")
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--counts", default="1,8", help="calibration image counts, one process each")
    ap.add_argument("--backends", default="onnxruntime,openvino", help="onnxruntime (static QDQ), openvino (NNCF)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--work", default="/tmp/edgesam-calib-memory")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "cpu_backends" / "results"))
    ap.add_argument("--lock", default=LOCK)
    ap.add_argument("--smoke", action="store_true", help="vit_t at 64 px, counts 1,2; results under --work")
    args = ap.parse_args(argv)
    if args.smoke:
        args.variant, args.image_size, args.counts = "vit_t", 64, "1,2"
        args.work = args.out = str(Path(args.work) / "smoke")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - set(CHILD):
        ap.error(f"--backends: choose from {', '.join(CHILD)}")
    calib = calibration_folder(Path(args.data))
    work = Path(args.work) / f"{args.variant}_{args.image_size or 'default'}"
    work.mkdir(parents=True, exist_ok=True)
    name = f"calib_memory_{args.variant}_{args.image_size or 'default'}"
    with bench_lock(args.lock):
        state = machine_state()
        encoder, size = export_encoder(work, args.variant, args.image_size)
        rows = [measure(b, encoder, size, int(c), work, calib) for b in backends for c in args.counts.split(",")]
    result = {"name": name, "variant": args.variant, "image_size": size, "weights": "random init (seed 0)",
              "command": command_line(argv), "calibration_images_from": str(calib), "limit_gb": LIMIT_GB, "rows": rows,
              "machine": state, "environment": environment(), "smoke": args.smoke}
    lines = [f"# int8 calibration memory: {args.variant} at {size} px", "", "Command:", "",
             f"    {result['command']}", "", f"CPU: {state['cpu_line']}; load average {state['load_average']}.",
             "Peak RSS of one process calibrating and quantizing the encoder (`/usr/bin/time -v`, maximum resident "
             "set size): onnxruntime = pre-processing, streamed MinMax calibration and quantize_static; openvino = "
             "IR conversion and NNCF post-training quantization.", "",
             "| backend | images | quantizers | max RSS GB | under 4 GB |", "|---|---|---|---|---|"]
    lines += [f"| {r['backend']} | {r['images']} | {r['quantizers']} | {r['max_rss_gb']:.2f} | "
              f"{'yes' if r['max_rss_gb'] < LIMIT_GB else 'no'} |" for r in rows]
    if args.smoke:
        lines += ["", "SMOKE RUN (tiny model): checks that the script works; the figures mean nothing."]
    write_json_atomic(Path(args.out) / f"{name}.json", result)
    write_text_atomic(Path(args.out) / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
