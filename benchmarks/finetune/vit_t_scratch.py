"""Benchmark (CPU): vit_t from random init with the default from-scratch recipe on magnetic-tile.

For each seed, `edgesam finetune --model vit_t --init random` (ROI crops + dense box + BCE/Dice, every
weight trained) runs as its own process, timed (wall and user CPU); its run is merged and scored on
the project's validation split (split seed 0, tight box prompts) per class against the box-filled
baseline on the same objects. Results: results.json / results.md beside this script, with the CPU,
its flags and the load average.

Reproduce (repo root, on a quiet machine; flock keeps two benchmarks from overlapping):
  flock /tmp/edgesam-bench.lock .venv/bin/python benchmarks/finetune/vit_t_scratch.py --seeds 0 1
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from benchmarks.verbs import edgesam  # noqa: E402
from benchmarks.records import flock_command, save  # noqa: E402

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("EDGESAM_MAGNETIC_TILE", REPO.parent / "shared" / "data" / "magnetic-tile"))
RUNS = REPO / "runs" / "bench" / "scratch"


def machine() -> dict:
    from edgesam_runtime.envinfo import machine_state

    state = machine_state()
    cpu = state["cpu"]
    return {"cpu_model": cpu.get("model"), "cpu_count": os.cpu_count(), "cpu_line": state["cpu_line"],
            "cpu_flags": [name for name, present in cpu.get("flags", {}).items() if present],
            "load_average": os.getloadavg()}


def train(seed: int, extra: list[str]) -> dict:
    """One finetune in a child process; wall and user CPU time of that process."""
    out = RUNS / f"seed{seed}"
    args = ["finetune", "--model", "vit_t", "--init", "random", "--data", DATA, "--seed", seed, "--out", out, *extra]
    if (out / "last.pt").exists():
        args.append("--resume")
    return {**edgesam(*args), "run_dir": str(out)}


def score(run_dir: Path) -> tuple[dict, dict, dict]:
    """(model report, box-fill report, finetune config) on the validation split the run held out."""
    import yaml

    from edgesam.data import load_dataset
    from edgesam.eval import evaluate_model, scoring_set
    from edgesam.models import create_model
    from edgesam.train import merge_run

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    merged = run_dir.with_suffix(".pth")
    merge_run(run_dir, merged)
    val = scoring_set(load_dataset(DATA, min_area=cfg["min_area"]), "val", cfg["val_fraction"], cfg["split_seed"])
    model = evaluate_model(create_model(checkpoint=merged), val, "box", seed=0, label=f"vit_t scratch seed {cfg['seed']}")
    baseline = evaluate_model(None, val, "box", seed=0, label="box-filled baseline")
    return model.to_dict(with_records=False), baseline.to_dict(with_records=False), cfg


def markdown(result: dict) -> str:
    lines = ["# vit_t from random init on magnetic-tile: the default `scratch` recipe", "",
             f"Command: `{result['command']}`", "",
             f"Machine: {result['machine']['cpu_model']} ({result['machine']['cpu_count']} cores), flags "
             f"{', '.join(result['machine']['cpu_flags']) or 'none of the listed'}; load average before "
             f"{result['machine']['load_average'][0]:.2f}, after {result['load_after'][0]:.2f}.", "",
             "Validation split: the project's (split seed 0, 20 %), tight box prompts; box-fill predicts the whole box.", "",
             "| seed | train wall | user CPU | steps | val mIoU | box-fill | " + " | ".join(result["classes"]) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(result["classes"])]
    for run in result["runs"]:
        per = run["model"]["per_class"]
        base = run["baseline"]["per_class"]
        cells = [f"{per[c]['miou']:.3f} vs {base[c]['miou']:.3f}" for c in result["classes"]]
        lines.append(f"| {run['seed']} | {run['wall_s'] / 60:.1f} min | {run['user_cpu_s'] / 60:.1f} min | "
                     f"{run['steps']} | **{run['model']['overall']['miou']:.4f}** | "
                     f"{run['baseline']['overall']['miou']:.4f} | " + " | ".join(cells) + " |")
    lines += ["", "Per class: model vs box-fill mIoU.", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    import json


    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more finetune flags (experiments)")
    args = parser.parse_args(argv)
    result = {"machine": machine(), "runs": []}
    for seed in args.seeds:
        timing = train(seed, args.extra)
        model, baseline, cfg = score(Path(timing["run_dir"]))
        steps = [json.loads(x) for x in (Path(timing["run_dir"]) / "status.jsonl").read_text().splitlines()]
        done = [s for s in steps if s["state"] == "done"][-1]["figures"]
        result["runs"].append({"seed": seed, **timing, "steps": done["steps"], "model": model, "baseline": baseline,
                               "config": cfg})
    result["load_after"] = os.getloadavg()
    result["command"] = flock_command(__file__)
    result["classes"] = sorted(result["runs"][0]["model"]["per_class"])
    save(HERE, "results", result, markdown)


if __name__ == "__main__":
    main()
