"""PyTorch reference predictor latency on this CPU: set_image (encoder + preprocessing) and predict
(one box: prompt encoder + decoder + upscaling to the original size), for vit_t and vit_b.

Weights are random (latency does not depend on their values). The image is a magnetic-tile
defect image when the data is beside the repo, else a synthetic 400x600 surface.

Reproduce (repo root):
  flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/predictor/latency.py
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import numpy as np
import torch

from edgesam.data import load_dataset, synthesize_dataset
from edgesam.utils.environment import toolchain_environment
from edgesam.models import create_model
from edgesam.reference.predictor import SamReferencePredictor
from edgesam_runtime.files import write_json_atomic, write_text_atomic
from edgesam_runtime.timing import repeat_ms

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = Path(os.environ.get("EDGESAM_MAGNETIC_TILE", REPO.parent / "shared" / "data" / "magnetic-tile"))


def test_image() -> tuple[np.ndarray, str]:
    if DATA.is_dir():
        sample = load_dataset(DATA).load(0)
        return sample.image, f"magnetic-tile {sample.class_name}/{sample.stem}"
    path = synthesize_dataset(Path("/tmp/edgesam-predictor-bench"), count=1, size=500)
    sample = load_dataset(path).load(0)
    return sample.image, "synthetic"


def measure(variant: str, image: np.ndarray, encoder_runs: int, decoder_runs: int) -> dict:
    torch.manual_seed(0)
    predictor = SamReferencePredictor(create_model(variant))
    h, w = image.shape[:2]
    box = np.array([w * 0.25, h * 0.25, w * 0.75, h * 0.75], np.float32)
    predictor.set_image(image)  # warm-up
    predictor.predict(boxes=box)
    enc = repeat_ms(lambda: predictor.set_image(image), encoder_runs)
    dec = repeat_ms(lambda: predictor.predict(boxes=box), decoder_runs)
    return {"variant": variant, "image_size": predictor.image_size, "set_image_ms": statistics.median(enc),
            "set_image_runs_ms": enc, "predict_box_ms": statistics.median(dec), "predict_runs": decoder_runs}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default="vit_t,vit_b")
    parser.add_argument("--encoder-runs", type=int, default=3)
    parser.add_argument("--decoder-runs", type=int, default=20)
    args = parser.parse_args()
    image, source = test_image()
    rows = [measure(v, image, args.encoder_runs, args.decoder_runs) for v in args.variants.split(",")]
    result = {"image": source, "image_hw": list(image.shape[:2]), "torch_threads": torch.get_num_threads(),
              "load_average_after": os.getloadavg(), "rows": rows, "environment": toolchain_environment(),
              "command": "flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/predictor/latency.py"}
    write_json_atomic(HERE / "results.json", result)
    lines = ["# PyTorch reference predictor latency (CPU)", "",
             f"Image: {source} {image.shape[1]}x{image.shape[0]}; torch threads {torch.get_num_threads()}; "
             f"load average after the run {os.getloadavg()[0]:.1f} (other processes may have been running).", "",
             "| variant | input | set_image median ms | predict (1 box) median ms |", "|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['image_size']} | {r['set_image_ms']:.0f} | {r['predict_box_ms']:.1f} |" for r in rows]
    lines += ["", f"Command: `{result['command']}`", ""]
    write_text_atomic(HERE / "results.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
