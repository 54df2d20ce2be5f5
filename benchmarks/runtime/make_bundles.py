"""Build the benchmark inputs: a random-init checkpoint (seed 0) and its bundle for one variant.

No official SAM weights can be downloaded here, so the models are randomly initialised: latency and
agreement with the PyTorch reference are meaningful, task mIoU against ground truth is not.

    .venv/bin/python benchmarks/runtime/make_bundles.py vit_t --work /tmp/edgesam-bench-runtime \
        --precisions fp32,fp16,int8 --calib ../shared/data/magnetic-tile/free/images
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from edgesam.export import ExportConfig, export_bundle
from edgesam.models import arch_for, create_model, save_checkpoint


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("variant")
    parser.add_argument("--work", default="/tmp/edgesam-bench-runtime")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--precisions", default="fp32")
    parser.add_argument("--calib", default=None)
    parser.add_argument("--calib-max-images", type=int, default=8)
    args = parser.parse_args()
    arch = arch_for(args.variant, args.image_size).replace(extra={"init": "random", "seed": 0})
    work = Path(args.work) / f"{args.variant}_{arch.image_size}"
    work.mkdir(parents=True, exist_ok=True)
    checkpoint = work / "model.pth"
    if not checkpoint.is_file():
        torch.manual_seed(0)
        save_checkpoint(create_model(args.variant, image_size=arch.image_size), checkpoint, arch)
    config = ExportConfig(precisions=tuple(args.precisions.split(",")), calib_data=args.calib,
                          calib_max_images=args.calib_max_images, decoder_style="official")
    export_bundle(checkpoint, work / "bundle", config)
    print(work)


if __name__ == "__main__":
    main()
