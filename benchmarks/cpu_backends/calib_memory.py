"""Peak RAM of static int8 calibration + quantization (the shipped `quantize_graph` path) against the
number of calibration images, measured with `/usr/bin/time -v` (maximum resident set size) on a fresh
process per count. Memory does not depend on machine load, so these figures hold on a busy machine too.

    .venv/bin/python benchmarks/cpu_backends/calib_memory.py --variant vit_b --counts 1,8

The encoder is the fp32 graph of a random-init model (seed 0), exported once under --work. The script
takes the benchmark lock while it runs (calibration is CPU-heavy and would disturb timings).
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from benchmarks.cpu_backends.cpu_backends import DATA, LOCK, bench_lock  # noqa: E402
from edgesam.envinfo import environment, machine_state  # noqa: E402
from edgesam.utils.files import write_json_atomic, write_text_atomic  # noqa: E402

LIMIT_GB = 4.0
CHILD = """
import sys, time
from pathlib import Path
from edgesam.export import ExportConfig
from edgesam.export.calibration import ImageCalibrationReader, calibration_digest, resolve_calibration_images
from edgesam.export.quantize import quantize_graph
encoder, out, count, size, calib = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
config = ExportConfig(precisions=("fp32", "int8"), int8_mode="static", calib_data=calib, calib_max_images=count,
                      calib_cache=str(out.parent / "no_cache_{}".format(time.time())))
images = resolve_calibration_images(calib, count)
info = quantize_graph(encoder, out, ImageCalibrationReader(images, size), config, calibration_digest(images), print)
print("IMAGES", len(images), "QUANTIZE_LINEAR", info["quantize_linear"], "PREPROCESS", info["preprocess"])
"""


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


def measure(encoder: Path, size: int, count: int, work: Path) -> dict:
    out = work / f"encoder.int8.{count}.onnx"
    cmd = ["/usr/bin/time", "-v", sys.executable, "-c", CHILD, str(encoder), str(out), str(count), str(size),
           str(DATA / "free" / "images")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"calibration with {count} images failed:\n{proc.stderr[-3000:]}")
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    summary = re.search(r"IMAGES (\d+) QUANTIZE_LINEAR (\d+) PREPROCESS (.*)", proc.stdout)
    out.unlink(missing_ok=True)
    return {"images": int(summary.group(1)), "quantize_linear": int(summary.group(2)), "preprocess": summary.group(3),
            "max_rss_kb": kb, "max_rss_gb": kb * 1024 / 1e9, "seconds": seconds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="vit_b")
    ap.add_argument("--image-size", type=int)
    ap.add_argument("--counts", default="1,8", help="calibration image counts, one process each")
    ap.add_argument("--work", default="/tmp/edgesam-calib-memory")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "cpu_backends" / "results"))
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    name = f"calib_memory_{args.variant}_{args.image_size or 'default'}"
    with bench_lock(LOCK):
        state = machine_state()
        encoder, size = export_encoder(work, args.variant, args.image_size)
        rows = [measure(encoder, size, int(c), work) for c in args.counts.split(",")]
    result = {"name": name, "variant": args.variant, "image_size": size, "weights": "random init (seed 0)",
              "command": ".venv/bin/python " + " ".join(map(shlex.quote, [sys.argv[0], *sys.argv[1:]])),
              "limit_gb": LIMIT_GB, "rows": rows, "machine": state, "environment": environment(with_torch=False)}
    lines = [f"# Static int8 calibration memory: {args.variant} at {size} px", "", "Command:", "",
             f"    {result['command']}", "", f"CPU: {state['cpu_line']}; load average {state['load_average']}.",
             "Peak RSS of one process doing pre-processing, streamed MinMax calibration and quantize_static "
             "(`/usr/bin/time -v`, maximum resident set size).", "",
             "| images | max RSS GB | under 4 GB | seconds |", "|---|---|---|---|"]
    lines += [f"| {r['images']} | {r['max_rss_gb']:.2f} | {'yes' if r['max_rss_gb'] < LIMIT_GB else 'no'} | "
              f"{r['seconds']:.0f} |" for r in rows]
    write_json_atomic(Path(args.out) / f"{name}.json", result)
    write_text_atomic(Path(args.out) / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
