"""GPU training throughput per strategy: vit_b at 1024, batch 4, bf16 autocast (needs CUDA).

Targets (H100): LoRA >= 40 images/s with <= 16 GiB peak; decoder with cached embeddings
>= 1000 images/s. Also measures LoRA with the official attention, side by side, to show what the
memory-efficient attention buys. Images come from magnetic-tile (or a synthetic set if absent).

Reproduce (repo root, on a CUDA machine):
  flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/finetune/gpu_throughput.py \
      [--checkpoint sam_vit_b_01ec64.pth] [--steps 20] [--out benchmarks/finetune]
Writes results_gpu.json and results_gpu.md next to this script (or --out).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("EDGESAM_MAGNETIC_TILE", REPO.parent / "shared" / "data" / "magnetic-tile"))

CASES = [  # (label, strategy, efficient attention, grad checkpointing, cached embeddings)
    ("lora", "lora", True, False, False),
    ("lora (official attention)", "lora", False, False, False),
    ("lora + grad checkpointing", "lora", True, True, False),
    ("decoder (cached embeddings)", "decoder", True, False, True),
    ("partial (last 2 blocks)", "partial", True, False, False),
    ("full", "full", True, False, False),
]


def batches(image_size: int, batch: int, count: int, objects: int):
    from edgesam.data import load_dataset, synthesize_dataset
    from edgesam.eval import labelled_images
    from edgesam.train.batches import PromptConfig, collate, prepare_sample

    root = DATA if DATA.is_dir() else synthesize_dataset(REPO / "runs" / "bench" / "synth", count=32, size=512)
    ds = labelled_images(load_dataset(root))
    rng = np.random.default_rng(0)
    out, i = [], 0
    while len(out) < count:
        items = []
        while len(items) < batch:
            item = prepare_sample(ds.load(i % len(ds)), image_size, rng, PromptConfig(box_prob=0.5), objects)
            i += 1
            if item is not None:
                items.append(item)
        out.append(collate(items))
    return out


def run_case(args, label, strategy, efficient, ckpt, cached, data):
    from edgesam.models import arch_for, build_sam, load_model
    from edgesam.models.attention import use_efficient_attention
    from edgesam.train import FinetuneConfig
    from edgesam.train.cache import EmbeddingCache
    from edgesam.train.loop import LossModule
    from edgesam.train.run import enable_gradient_checkpointing
    from edgesam.train.strategies import apply_strategy

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    sam = load_model(args.model, args.checkpoint)[0] if args.checkpoint else build_sam(arch_for(args.model, args.image_size))
    if efficient:
        use_efficient_attention(sam)
    cfg = FinetuneConfig(model=args.model, init="random", strategy=strategy, partial_blocks=2)
    st = apply_strategy(sam, cfg)
    if ckpt:
        enable_gradient_checkpointing(sam)
    sam.to(dev).train()
    module = LossModule(sam)
    opt = torch.optim.AdamW([{"params": g["params"], "lr": 1e-5} for g in st.groups])
    cache = EmbeddingCache(sam.image_encoder) if cached else None
    data = [b.to(dev) for b in data]
    if cache is not None:  # fill the cache first: the figure is the cached-epoch throughput
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            for b in data:
                cache.features(b.images)

    def step(b):
        feats = cache.features(b.images) if cache is not None else None
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss, _ = module(b.images, b.items, feats)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for b in data[: args.warmup]:
        step(b)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    t0 = time.perf_counter()
    n = 0
    for k in range(args.steps):
        b = data[(args.warmup + k) % len(data)]
        step(b)
        n += b.images.shape[0]
    sync()
    dt = time.perf_counter() - t0
    row = {"case": label, "strategy": strategy, "efficient_attention": efficient, "grad_checkpointing": ckpt,
           "cached_embeddings": cached, "images_per_s": n / dt, "step_ms": 1000 * dt / args.steps,
           "peak_mem_gib": torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else float("nan"), "trainable_params": st.trainable_params}
    del sam, module, opt, cache
    return row


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--objects", type=int, default=4)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent))
    p.add_argument("--model", default="vit_b")
    p.add_argument("--image-size", type=int, default=1024)
    p.add_argument("--device", default="cuda", help="cpu only for a smoke test of this script (figures meaningless)")
    args = p.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("gpu_throughput: no CUDA device; this benchmark measures GPU training throughput only")
    from edgesam.utils.environment import toolchain_environment
    from edgesam_runtime.files import write_json_atomic, write_text_atomic

    data = batches(args.image_size, args.batch, args.warmup + min(args.steps, 8), args.objects)
    rows = []
    for case in CASES:
        try:
            rows.append(run_case(args, *case, data))
        except torch.cuda.OutOfMemoryError:
            rows.append({"case": case[0], "error": "CUDA out of memory"})
        print(rows[-1], flush=True)
    result = {"command": "flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/finetune/gpu_throughput.py "
                         + " ".join(sys.argv[1:]),
              "setup": vars(args), "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device, "environment": toolchain_environment(),
              "targets": {"lora_images_per_s": 40, "lora_peak_gib": 16, "decoder_cached_images_per_s": 1000},
              "rows": rows}
    out = Path(args.out)
    write_json_atomic(out / "results_gpu.json", result)
    md = [f"# GPU fine-tuning throughput ({result['device']}, {args.model} {args.image_size}, batch {args.batch}, bf16)", "",
          f"Command: `{result['command']}`", "", "| case | images/s | step ms | peak GiB | trainable params |",
          "|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['case']} | {r.get('images_per_s', float('nan')):.1f} | {r.get('step_ms', float('nan')):.1f} | "
                  f"{r.get('peak_mem_gib', float('nan')):.2f} | {r.get('trainable_params', 0):,} |" if "error" not in r
                  else f"| {r['case']} | {r['error']} | | | |")
    write_text_atomic(out / "results_gpu.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
