"""Benchmark (CPU): finetune's memory estimate against the peak it then measures, per configuration.

Each configuration trains a few steps in a fresh process on a synthetic dataset and reports the
estimate printed at setup (`memory_estimate_gib.total` in status.jsonl) and the run's peak resident
memory (`peak_mem_gib`: Linux VmHWM since training started). Memory does not depend on the machine's
load, so these figures may be recorded on a shared machine. Target: estimate within 1.5x of the peak.

Reproduce from the repository root:
  .venv/bin/python benchmarks/memory/estimate_vs_peak.py            # writes results.json / results.md here
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from benchmarks.verbs import edgesam  # noqa: E402

HERE = Path(__file__).resolve().parent
# (model, image size, strategy, batch size)
CONFIGS = [("vit_t", 64, "lora", 1), ("vit_t", 256, "full", 4), ("vit_b", 256, "lora", 2), ("vit_b", 512, "lora", 2),
           ("vit_b", 512, "full", 2)]
TARGET = 1.5


def run(model: str, size: int, strategy: str, batch: int, work: Path) -> dict:
    data = work / f"data{size}"
    if not data.exists():
        edgesam("data", "synth", data, "--count", 8, "--size", size, cwd=REPO, stdout=subprocess.DEVNULL)
    out = work / f"{model}_{size}_{strategy}_{batch}"
    edgesam("--cpu-threads", 2, "finetune", "--model", model, "--init", "random", "--image-size", size, "--data", data,
            "--strategy", strategy, "--batch-size", batch, "--epochs", 1, "--max-steps", 3, "--objects-per-image", 4,
            "--device", "cpu", "--out", out, cwd=REPO, capture_output=True)
    events = [json.loads(line) for line in (out / "status.jsonl").read_text().splitlines()]
    setup = next(e for e in events if e["state"] == "setup")
    done = [e for e in events if e["state"] == "done" and "peak_mem_gib" in e["figures"]][-1]
    estimate, peak = setup["figures"]["memory_estimate_gib"], done["figures"]["peak_mem_gib"]
    return {"model": model, "image_size": size, "strategy": strategy, "batch_size": batch, "estimate": estimate,
            "peak_gib": peak, "peak_over_estimate": peak / estimate["total"]}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="edgesam-memory-") as tmp:
        rows = [run(*c, Path(tmp)) for c in CONFIGS]
    lines = ["# finetune memory estimate vs measured peak (CPU, peak resident memory)", "",
             f"Target: within {TARGET:g}x. Command: `python benchmarks/memory/estimate_vs_peak.py` (3 steps, "
             "random init, synthetic data).", "",
             "| model | size | strategy | batch | estimate GiB | of which resident at start | peak GiB | peak / estimate |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e = r["estimate"]
        lines.append(f"| {r['model']} | {r['image_size']} | {r['strategy']} | {r['batch_size']} | {e['total']:.2f} | "
                     f"{e.get('resident_now', float('nan')):.2f} | {r['peak_gib']:.2f} | {r['peak_over_estimate']:.2f} |")
    (HERE / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
