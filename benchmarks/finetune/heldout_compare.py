"""Benchmark (CPU): adapting a trained model to a defect class it never saw, with and without replay.

1. A base vit_t is trained from random init (the default `scratch` recipe) on four magnetic-tile
   classes; the fifth (`--new-class`, default fray) is held out.
2. The base's zero-shot score on the new class and on the old ones.
3. `edgesam finetune --checkpoint base.pth --data NEW --strategy S` with the default adaptation recipe,
   each strategy alone and with `--replay OLD` (the default share, three quarters of every batch, from the base's own training
   data). Every run scores its start and keeps it when no epoch beats it.
4. Every adapted model is merged and scored on the new class's validation split and on the four old
   classes' (forgetting), beside its trainable share of the weights and wall time; then exported
   fp32 + int8 and benched through the runtime on the new class (int8 vs fp32, runtime vs PyTorch).

All scores: the project's validation split (20 %, split seed 0, per class), tight box prompts.
Results: heldout_results.json / heldout_results.md beside this script, with the CPU, its flags and the
load average (wall times are only comparable within one run).

Reproduce (repo root, on a quiet machine):
  flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/finetune/heldout_compare.py
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.finetune.common import MAGNETIC_TILE, REPO, edgesam, fidelity, image_folder, machine_line, outcome, scores  # noqa: E402
from benchmarks.records import flock_command, save  # noqa: E402

HERE = Path(__file__).resolve().parent
CLASSES = ("blowhole", "break", "crack", "fray", "uneven")
RUNS = {"lora": ["--strategy", "lora"], "lora + replay": ["--strategy", "lora", "--replay", "{old}"],
        "full": ["--strategy", "full"], "full + replay": ["--strategy", "full", "--replay", "{old}"]}


def class_view(root: Path, classes) -> Path:
    """A per-class dataset folder holding only `classes` (links to the originals; nothing copied)."""
    root.mkdir(parents=True, exist_ok=True)
    for name in classes:
        if not (root / name).exists():
            (root / name).symlink_to((MAGNETIC_TILE / name).resolve(), target_is_directory=True)
    return root


def main(argv=None) -> None:
    from edgesam.utils.environment import toolchain_environment
    from edgesam.models import count_parameters, create_model
    from edgesam.train import merge_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-class", default="fray", choices=CLASSES)
    parser.add_argument("--work", type=Path, default=REPO / "runs/bench/heldout")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", default=",".join(RUNS), help="which of: " + ", ".join(RUNS))
    args = parser.parse_args(argv)
    work, load_before = args.work, os.getloadavg()
    old = class_view(work / "data_old", [c for c in CLASSES if c != args.new_class])
    new = class_view(work / "data_new", [args.new_class])

    base = work / "base.pth"
    if not base.exists():
        edgesam("finetune", "--model", "vit_t", "--init", "random", "--data", old, "--seed", args.seed,
                "--out", work / "base_run", *(["--resume"] if (work / "base_run/last.pt").exists() else []))
        merge_run(work / "base_run", base)
    rows = [{"name": "zero-shot (the base)", "new": scores(base, new), "old": scores(base, old)}]
    calib = image_folder(new, work / "calib")
    for name in args.runs.split(","):
        run = work / name.replace(" + ", "_")
        if not (run / "status.jsonl").exists() or '"done"' not in (run / "status.jsonl").read_text():
            flags = [f.format(old=old) for f in RUNS[name]]
            edgesam("finetune", "--checkpoint", base, "--data", new, "--seed", args.seed, "--out", run,
                    *(["--resume"] if (run / "last.pt").exists() else []), *flags)
        merged = work / f"{run.name}.pth"
        merge_run(run, merged)
        rows.append({"name": name, "new": scores(merged, new), "old": scores(merged, old), "run": outcome(run),
                     "fidelity": fidelity(merged, new, work / f"{run.name}_export", calib)})
    result = {"new_class": args.new_class, "base_params": count_parameters(create_model(checkpoint=base)),
              "rows": rows, "environment": toolchain_environment(), "load_before": load_before, "load_after": os.getloadavg(),
              "command": flock_command(__file__)}
    save(HERE, "heldout_results", result, markdown)


def markdown(result: dict) -> str:
    zero = result["rows"][0]
    lines = [f"# Adapting to a held-out class ({result['new_class']}), with and without replay", "",
             f"Command: `{result['command']}`", "",
             f"Machine: {machine_line(result['environment'])}; load average before {result['load_before'][0]:.2f}, "
             f"after {result['load_after'][0]:.2f}.", "",
             "Base: vit_t from random init, `scratch` recipe, trained on the other four classes. Adaptation: "
             "`edgesam finetune --checkpoint base.pth --data NEW` with the default `adapt` recipe (framing and "
             "refiner as the base records them); `+ replay`: `--replay OLD` (default share 0.75; epochs ranked by both groups, at most 1 point lost on the old). Scores: validation split, tight "
             "box prompts.", "",
             f"| run | new class mIoU | gain vs zero-shot | old classes mIoU | change (points) | run verdict | "
             f"trainable (% of {result['base_params'] / 1e6:.2f} M) | int8 vs fp32 (points) | runtime IoU vs PyTorch "
             "(fp32 / int8) | wall s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        new, old, run, fid = r["new"], r["old"], r.get("run"), r.get("fidelity") or {}
        gain, change = new["miou"] - zero["new"]["miou"], 100 * (old["miou"] - zero["old"]["miou"])
        if run is None:
            lines.append(f"| {r['name']} | {new['miou']:.4f} | - | {old['miou']:.4f} | - | - | 0 | - | - | - |")
            continue
        share = 100 * run["trainable_params"] / result["base_params"]
        verdict = "start kept (no gain)" if run["kept_start"] else f"best epoch {run['best_epoch']}"
        fp32, int8 = fid.get("fp32", {}), fid.get("int8", {})
        lines.append(f"| {r['name']} | {new['miou']:.4f} | {gain:+.4f} | {old['miou']:.4f} | {change:+.2f} | {verdict} | "
                     f"{run['trainable_params']:,} ({share:.1f} %) | "
                     f"{100 * (int8.get('task_miou', 0) - fp32.get('task_miou', 0)):+.2f} | "
                     f"{fp32.get('iou_vs_pytorch') or float('nan'):.4f} / {int8.get('iou_vs_pytorch') or float('nan'):.4f} | "
                     f"{run['wall_s']:.0f} |")
    lines += ["", "Target: default LoRA gains >= 0.05 mIoU on the new class over zero-shot with <= 5 % trainable "
                  "weights and, with --replay, loses <= 1 point on the old classes.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
