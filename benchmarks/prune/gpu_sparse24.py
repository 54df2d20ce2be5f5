"""2:4 semi-structured sparsity of the encoder Linears on a GPU: speed and accuracy vs dense fp16.

Needs an Ampere-or-newer CUDA GPU (sparse tensor cores); exits with a message elsewhere. Measures,
in one run: dense fp16 encoder latency, the same encoder with 2:4-masked weights run dense (the
accuracy of the pattern alone), and with the weights compressed by torch.sparse.to_sparse_semi_structured
(the speed of the kernels). Accuracy: relative embedding error and, with --checkpoint/--data, mask
IoU vs the dense model on the magnetic-tile validation split (tight GT boxes). Note that 2:4 is applied
here without recovery fine-tuning; run `recover` on the masked model to claw accuracy back.

Reproduce:
  flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/prune/gpu_sparse24.py --model vit_b --batch 1
  .venv/bin/python benchmarks/prune/gpu_sparse24.py --checkpoint runs/bench/vit_t_magnetic.pth --data ../shared/data/magnetic-tile
"""
from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch

from common import context, write
from edgesam.compress.sparse24 import apply_2to4, to_semi_structured
from edgesam.models import load_model


def time_encoder(encoder, x, iters: int) -> float:
    """Median ms per call with CUDA events, after warmup."""
    with torch.inference_mode():
        for _ in range(3):
            encoder(x)
        times = []
        for _ in range(iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            encoder(x)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def mask_iou_on_data(dense, sparse, data: Path, max_images: int) -> dict:
    from edgesam.compress.accuracy import agreement_with_unpruned, unpruned_reference
    from edgesam.eval import scoring_set

    val = scoring_set(data, "val", 0.2, seed=0)
    return agreement_with_unpruned(sparse.float().cpu(), unpruned_reference(dense.float().cpu(), val, max_images))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--data", type=Path)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--max-images", type=int, default=80)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_sparse24: needs a CUDA GPU (compute capability >= 8.0); nothing measured")
    ctx = context()
    ctx["gpu"] = torch.cuda.get_device_name(0)
    torch.manual_seed(0)
    dense, arch = load_model(None if args.checkpoint else args.model, args.checkpoint)
    masked = copy.deepcopy(dense)
    counts = apply_2to4(masked)
    x = torch.randn(args.batch, 3, arch.image_size, arch.image_size, device="cuda", dtype=torch.float16)
    dense_gpu, masked_gpu = copy.deepcopy(dense).cuda().half(), copy.deepcopy(masked).cuda().half()
    with torch.inference_mode():
        ref, approx = dense_gpu.image_encoder(x).float(), masked_gpu.image_encoder(x).float()
    rel_err = float((approx - ref).norm() / ref.norm())
    dense_ms = time_encoder(dense_gpu.image_encoder, x, args.iters)
    masked_ms = time_encoder(masked_gpu.image_encoder, x, args.iters)
    conversion = to_semi_structured(masked_gpu)
    with torch.inference_mode():
        kernel_err = float((masked_gpu.image_encoder(x).float() - approx).norm() / approx.norm())
    sparse_ms = time_encoder(masked_gpu.image_encoder, x, args.iters)
    result = {**ctx, "model": args.model, "checkpoint": str(args.checkpoint) if args.checkpoint else None,
              "image_size": arch.image_size, "batch": args.batch, "dtype": "float16", "sparsified": counts,
              "converted_layers": len(conversion["converted"]), "skipped_layers": conversion["skipped"],
              "dense_ms": dense_ms, "masked_dense_ms": masked_ms, "semi_structured_ms": sparse_ms,
              "speedup_vs_dense": dense_ms / sparse_ms, "embedding_rel_error_2to4": rel_err,
              "kernel_vs_masked_dense_rel_error": kernel_err}
    if args.checkpoint and args.data:
        result["accuracy_2to4_no_recovery"] = mask_iou_on_data(dense, masked, args.data, args.max_images)
    md = [f"# 2:4 semi-structured sparsity on {ctx['gpu']}", "", f"Command: `{ctx['command']}`", "",
          f"{args.model} encoder, {arch.image_size} px, batch {args.batch}, fp16: dense {dense_ms:.2f} ms, "
          f"2:4 compressed {sparse_ms:.2f} ms ({dense_ms / sparse_ms:.2f}x); embedding relative error of the "
          f"2:4 pattern {rel_err:.4f} (no recovery). Converted {len(conversion['converted'])} layers, "
          f"skipped {len(conversion['skipped'])}.", ""]
    if "accuracy_2to4_no_recovery" in result:
        from edgesam.compress.accuracy import accuracy_line

        md.append(f"Against dense (magnetic-tile val): {accuracy_line(result['accuracy_2to4_no_recovery'])}")
    write("gpu_sparse24", result, lambda _: "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
