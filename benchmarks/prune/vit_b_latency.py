"""vit_b encoder: parameters, analytic FLOPs and ONNX Runtime CPU latency at 25 % / 50 % pruning.

Random weights (latency does not depend on values), magnitude importance, per-block ratios.
Target: 50 % MLP + 25 % head pruning makes the encoder >= 1.6x faster in ORT on this CPU.

Reproduce (from the repo root):
  flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/prune/vit_b_latency.py --runs 5
"""
from __future__ import annotations

import argparse
import gc
import tempfile
from pathlib import Path

import torch

from common import context, write
from edgesam.compress import PruneConfig, encoder_flops, prune_model
from edgesam.compress.latency import export_encoders, time_sessions
from edgesam.models import arch_for, build_sam, count_parameters

CONFIGS = {
    "heads25_mlp25": PruneConfig(ratio=0.25),
    "heads50_mlp50": PruneConfig(ratio=0.5),
    "heads25_mlp50 (target)": PruneConfig(head_ratio=0.25, mlp_ratio=0.5),
}
TARGET_NAME, TARGET_SPEEDUP = "heads25_mlp50 (target)", 1.6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=1024)
    args = parser.parse_args()
    ctx = context()
    torch.manual_seed(0)
    arch = arch_for("vit_b", args.image_size)
    base = build_sam(arch)
    rows = {"unpruned": _row(base, arch)}
    with tempfile.TemporaryDirectory(prefix="vit_b_latency-") as tmp:
        # Export one model at a time and drop it: only the ONNX sessions stay in memory.
        paths = export_encoders({"unpruned": base}, Path(tmp))
        for name, cfg in CONFIGS.items():
            model, new_arch, _ = prune_model(base, arch, cfg)
            rows[name] = _row(model, new_arch)
            paths.update(export_encoders({name.split(" ")[0]: model}, Path(tmp)))
            del model
            gc.collect()
        del base
        gc.collect()
        timed = time_sessions(paths, args.image_size, runs=args.runs, warmup=1, low_memory=True)
    latency = {name: timed[name.split(" ")[0]] for name in rows}
    ref = latency["unpruned"]["median_ms"]
    for name, row in rows.items():
        row.update(latency[name])
        row["speedup_vs_unpruned"] = ref / row["median_ms"]
    met = rows[TARGET_NAME]["speedup_vs_unpruned"] >= TARGET_SPEEDUP
    payload = {**ctx, "image_size": args.image_size, "runs": args.runs, "results": rows,
               "target": {"config": TARGET_NAME, "min_speedup": TARGET_SPEEDUP, "met": met}}
    write("vit_b_latency", payload, _markdown)


def _row(model, arch) -> dict:
    return {"encoder_params_m": count_parameters(model.image_encoder) / 1e6,
            "encoder_gflops": encoder_flops(arch)["total"] / 1e9,
            "block_heads": list(arch.block_heads or [arch.num_heads] * arch.depth),
            "block_mlp_dims": list(arch.block_mlp_dims or [arch.mlp_dim] * arch.depth)}


def _markdown(p: dict) -> str:
    lines = [f"# vit_b encoder pruning: ONNX Runtime CPU latency ({p['image_size']} px)", "",
             f"Command: `{p['command']}`  ", f"Started {p['started']}; load average start {p['loadavg_start']}, "
             f"end {p['loadavg_end']}. {p['note']}", "",
             "| config | heads/block | MLP width | encoder params (M) | GFLOPs | ORT median ms | min ms | speedup |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in p["results"].items():
        lines.append(f"| {name} | {r['block_heads'][0]} | {r['block_mlp_dims'][0]} | {r['encoder_params_m']:.1f} | "
                     f"{r['encoder_gflops']:.0f} | {r['median_ms']:.0f} | {r['min_ms']:.0f} | {r['speedup_vs_unpruned']:.2f}x |")
    t = p["target"]
    lines += ["", f"Target: {t['config']} >= {t['min_speedup']}x faster: **{'met' if t['met'] else 'NOT met'}** "
              f"({p['results'][t['config']]['speedup_vs_unpruned']:.2f}x, median of {p['runs']} round-robin runs).", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
