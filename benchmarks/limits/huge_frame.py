"""Benchmark (CPU): peak resident memory of the runtime on a 20000 x 20000 frame with 64 boxes.

Each scenario runs in a fresh process that imports only `edgesam_runtime` (no torch), opens a tiny
bundle (vit_t at 64 px, random weights: memory here is the frame's, not the model's), makes a gray
20000 x 20000 uint8 frame (400 MB), then per phase resets the kernel's peak counter (VmHWM, via
/proc/self/clear_refs) and records how far the peak rose above the resident set at the phase's start:

- whole-image bundle, default limits: `encode` refused (400 MP > 100 MP) before allocating;
- whole-image bundle, frame limit raised: `encode` runs; `segment` of 64 full-frame masks (24 GiB)
  refused by the memory estimate before allocating;
- ROI-framed bundle, frame limit raised: `segment(..., crop=True)` of 64 boxes runs; full-frame
  masks refused as above.

Each phase's peak is compared with the bound `edgesam_runtime.limits` documents (its estimate).
Memory does not depend on the machine's load; the script still records the CPU and load average.

Reproduce from the repository root (takes about a minute; holds the benchmark lock):
  flock /tmp/edgesam-bench.lock python benchmarks/limits/huge_frame.py   # writes results.json / results.md here
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SIDE, BOXES = 20000, 64

# The measuring process: runtime only. It reads /proc itself (edgesam's reader lives beside torch code).
CHILD = r'''
import json, re, sys, time
import numpy as np
from edgesam_runtime import InvalidInputError, Segmenter
from edgesam_runtime.limits import Limits, cropped_mask_bytes, encode_bytes, full_mask_bytes

def kib(field):
    return int(re.search(field + r":\s+(\d+)", open("/proc/self/status").read()).group(1))

def phase(name, fn):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from the current resident set
    start_rss, t0 = kib("VmRSS"), time.perf_counter()
    try:
        value, outcome = fn(), "ran"
    except InvalidInputError as exc:
        value, outcome = None, "refused: " + str(exc)[:160]
    row = {"phase": name, "outcome": outcome, "seconds": round(time.perf_counter() - t0, 2),
           "rss_start_mib": start_rss / 1024, "peak_mib": kib("VmHWM") / 1024,
           "peak_rise_mib": (kib("VmHWM") - start_rss) / 1024}
    rows.append(row)
    return value

bundle, roi, raised = sys.argv[1], sys.argv[2] == "roi", sys.argv[3] == "raised"
side, count = int(sys.argv[4]), int(sys.argv[5])
rows = []
limits = Limits(max_frame_pixels=side * side) if raised else Limits()
seg = Segmenter.open(bundle, threads=2, limits=limits)
frame = phase("make the frame", lambda: np.tile(np.arange(256, dtype=np.uint8), (side, side // 256 + 1))[:, :side].copy())
rng = np.random.default_rng(0)
xy = rng.integers(0, side - 400, size=(count, 2))
boxes = np.concatenate([xy, xy + rng.integers(20, 400, size=(count, 2))], axis=1).astype(np.float32)
emb = phase("encode", lambda: seg.encode(frame))
bounds = {"encode": encode_bytes(frame, roi) / 2**20,
          "segment (full masks)": full_mask_bytes(count, 1, frame.shape) / 2**20}
if emb is not None:
    phase("segment (full masks)", lambda: seg.segment(emb, boxes=boxes))
    if roi:
        result = phase("segment (crop=True)", lambda: seg.segment(emb, boxes=boxes, crop=True))
        windows = sum(m.size for m in result.masks)
        side_max = max(max(m.shape[-2:]) for m in result.masks)
        bounds["segment (crop=True)"] = cropped_mask_bytes([windows], 1, side_max * side_max) / 2**20
        rows[-1]["window_pixels"] = windows
print(json.dumps({"rows": rows, "bounds_mib": bounds, "frame_mib": frame.nbytes / 2**20}))
'''


def make_bundle(work: Path, roi: bool) -> Path:
    code = (
        "import sys, torch\n"
        "from edgesam_runtime import roi\n"
        "from edgesam.export import ExportConfig, export_bundle\n"
        "from edgesam.models import arch_for, build_sam, save_checkpoint\n"
        "torch.manual_seed(0)\n"
        "arch = arch_for('vit_t', 64)\n"
        f"arch = roi.with_framing(arch, roi.InputFraming(mode='roi', dense_box=True)) if {roi} else arch\n"
        "ck = save_checkpoint(build_sam(arch), sys.argv[1] + '/model.pth', arch)\n"
        "export_bundle(ck, sys.argv[1] + '/bundle', ExportConfig(precisions=('fp32',), max_boxes=64), progress=False)\n")
    folder = work / ("roi" if roi else "image")
    folder.mkdir()
    subprocess.run([sys.executable, "-c", code, str(folder)], cwd=REPO, check=True)
    return folder / "bundle"


def main() -> None:
    sys.path.insert(0, str(REPO))
    from edgesam_runtime import envinfo

    scenarios = [("whole image", False, "default"), ("whole image", False, "raised"), ("ROI crops", True, "raised")]
    results = []
    with tempfile.TemporaryDirectory(prefix="edgesam-limits-") as tmp:
        bundles = {False: make_bundle(Path(tmp), False), True: make_bundle(Path(tmp), True)}
        for label, roi, limits in scenarios:
            out = subprocess.run([sys.executable, "-c", CHILD, str(bundles[roi]), "roi" if roi else "image", limits,
                                  str(SIDE), str(BOXES)], cwd=REPO, check=True, capture_output=True, text=True)
            results.append({"bundle": label, "limits": limits, **json.loads(out.stdout.strip().splitlines()[-1])})
    cpu = envinfo.cpu_features()
    header = {"cpu": envinfo.describe_cpu(cpu), "flags": cpu.get("flags"), "load_average": envinfo.load_average(),
              "frame": f"{SIDE}x{SIDE} uint8 gray", "boxes": BOXES, "python": sys.version.split()[0]}
    (HERE / "results.json").write_text(json.dumps({"machine": header, "scenarios": results}, indent=2) + "\n")
    lines = ["# Runtime memory on a 20000 x 20000 frame with 64 boxes (peak resident memory)", "",
             f"Machine: {header['cpu']}; load average {header['load_average']}. Command: "
             "`flock /tmp/edgesam-bench.lock python benchmarks/limits/huge_frame.py` (vit_t at 64 px, random weights, "
             "2 threads; the frame itself is 381 MiB).", "",
             "Peak rise: how far the process's peak resident memory (VmHWM) rose above its resident set at the start "
             "of the phase. Estimate: what `edgesam_runtime.limits` computes and checks against `max_call_bytes` "
             "before allocating (edgesam's own arrays; the backend's working memory comes on top). Peak: the whole "
             "process, frame and model included.", "",
             "| bundle | limits | phase | outcome | peak rise MiB | estimate MiB | peak MiB | s |", "|---|---|---|---|---|---|---|---|"]
    for scenario in results:
        for row in scenario["rows"]:
            bound = scenario["bounds_mib"].get(row["phase"])
            outcome = row["outcome"] if len(row["outcome"]) < 70 else row["outcome"][:67] + "..."
            lines.append(f"| {scenario['bundle']} | {scenario['limits']} | {row['phase']} | {outcome} | "
                         f"{row['peak_rise_mib']:.0f} | {'-' if bound is None else f'{bound:.0f}'} | "
                         f"{row['peak_mib']:.0f} | {row['seconds']} |")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
