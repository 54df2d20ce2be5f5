"""Benchmark (CPU): does bf16 autocast speed up training where the CPU has bf16 math (AVX512_BF16, AMX)?

`edgesam finetune --model vit_t --init random` (the scratch recipe on magnetic-tile) for a few epochs with
`--amp off` and `--amp bf16`, alternated (off, bf16, off, bf16) so a drift of the machine hits both; the
figure is the training throughput each run's metrics.csv records per epoch (images/s, validation and start-up
excluded), its first epoch left out as warm-up. `amp: auto` uses bf16 only on CUDA; this is what decides
whether a CPU should too (issue: "training uses CPU bf16 autocast when it keeps the recipe's accuracy").

Reproduce (repo root, quiet machine):
  flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/finetune/cpu_amp.py
Results: cpu_amp.json / cpu_amp.md beside this script, with the CPU, its flags, threads and load.
"""
from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.verbs import edgesam  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1].parent / "shared" / "data" / "magnetic-tile"


def throughput(run_dir: Path) -> list[float]:
    """Training images/s of each epoch after the first (warm-up)."""
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) >= 2 and r["img_s"] not in ("", "nan")]
    return [float(r["img_s"]) for r in rows]


def main(argv=None) -> None:
    from edgesam_runtime.envinfo import machine_state
    from edgesam_runtime.files import write_json_atomic, write_text_atomic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    before = machine_state()
    runs = {"off": [], "bf16": []}
    with tempfile.TemporaryDirectory() as work:
        for r in range(args.rounds):
            for amp in runs:
                out = Path(work) / f"{amp}{r}"
                edgesam("finetune", "--model", "vit_t", "--init", "random", "--data", DATA, "--seed", 0,
                        "--epochs", args.epochs, "--val-every", args.epochs, "--amp", amp, "--out", out)
                runs[amp] += throughput(out)
    after = machine_state()
    result = {"img_s": runs, "median_img_s": {k: float(np.median(v)) for k, v in runs.items()},
              "machine": before, "load_after": after["load_average"],
              "command": "flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/finetune/cpu_amp.py "
                         + " ".join(sys.argv[1:] if argv is None else argv)}
    ratio = result["median_img_s"]["bf16"] / result["median_img_s"]["off"]
    result["bf16_over_fp32"] = ratio
    write_json_atomic(HERE / "cpu_amp.json", result)
    md = "\n".join([
        "# bf16 autocast for training on the CPU", "", f"Command: `{result['command']}`", "",
        f"Machine: {before['cpu_line']}; {before['threads']['why']}; load average before {before['load_average']}, "
        f"after {after['load_average']}.", "",
        f"vit_t, scratch recipe (128 px ROI crops, batch 8), {args.epochs} epochs per run, {args.rounds} rounds "
        "alternating fp32 and bf16; training images/s per epoch, the first epoch of each run left out.", "",
        "| autocast | median images/s | epochs timed |", "|---|---|---|",
        *[f"| {'fp32 (off)' if k == 'off' else k} | {result['median_img_s'][k]:.1f} | {len(v)} |" for k, v in runs.items()],
        "", f"bf16 / fp32 throughput: **{ratio:.2f}x**.", ""])
    write_text_atomic(HERE / "cpu_amp.md", md)
    print(md)


if __name__ == "__main__":
    main()
