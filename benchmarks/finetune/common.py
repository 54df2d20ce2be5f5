"""What the fine-tuning benchmarks share: running a verb as a user does, scoring a checkpoint on a validation
split, adapting a base and judging the adapted model against its start, and its fidelity once exported."""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from benchmarks.verbs import edgesam  # noqa: E402  (re-exported: the finetune scripts import it from here)

MAGNETIC_TILE = Path(os.environ.get("EDGESAM_MAGNETIC_TILE", REPO.parent / "shared" / "data" / "magnetic-tile"))


@functools.lru_cache(maxsize=None)
def validation_set(data: Path):
    from edgesam.eval import scoring_set

    return scoring_set(str(data), "val", 0.2, 0)


def scores(checkpoint: Path, data: Path) -> dict:
    """Val-split mIoU of `checkpoint` on `data` (tight boxes), overall and per class, with empty masks."""
    from edgesam.eval import evaluate_model
    from edgesam.models import create_model

    report = evaluate_model(create_model(checkpoint=checkpoint), validation_set(data), "box", seed=0,
                            label=str(checkpoint))
    figures = report.to_dict(with_records=False)
    return {"miou": figures["overall"]["miou"], "per_class": {k: v["miou"] for k, v in figures["per_class"].items()},
            "objects": figures["overall"]["n"], "empty": figures["overall"]["empty_predictions"]}


def outcome(run_dir: Path) -> dict:
    """The run's own record of how it ended (status.jsonl's last line): start, best, kept start, share."""
    ends = [e for e in map(json.loads, (run_dir / "status.jsonl").read_text().splitlines())
            if e["state"] == "done" and "start_miou" in e["figures"]]  # the outcome line (not a stage's "done")
    assert ends, f"{run_dir}: the run did not finish"
    done = ends[-1]
    setup = [json.loads(x) for x in (run_dir / "status.jsonl").read_text().splitlines() if '"setup"' in x][0]
    return {**{k: done["figures"][k] for k in ("start_miou", "best_miou", "best_epoch", "kept_start", "trainable_params",
                                               "wall_s", "steps", "peak_mem_gib", "adapter_bytes")},
            "message": done["message"], "setup": setup["message"]}


def fidelity(checkpoint: Path, data: Path, work: Path, calib: Path) -> dict:
    """Export fp32 + static int8 (calibrated on `calib`) and bench both through the runtime on the val
    split: IoU against PyTorch (non-empty pairs), task mIoU per graph set, empty masks."""
    bundle, out = work / "bundle", work / "bench"
    if not (bundle / "manifest.json").exists():
        edgesam("export", "--checkpoint", checkpoint, "--out", bundle, "--precision", "fp32,int8", "--calib-data", calib,
                "--calib-max-images", 16, "--quiet")
    edgesam("bench", bundle, "--data", data, "--split", "val", "--reference", checkpoint, "--max-images", 10_000,
            "--backends", "auto", "--out", out)
    report = json.loads((out / "bench.json").read_text())
    rows = {}
    for row in report["formats"]:
        if "skipped" in row:
            continue
        rows[row["format"]] = {"task_miou": row["task_iou"]["mean"],
                               "iou_vs_pytorch": (row.get("iou_vs_reference") or {}).get("mean"),
                               "empty_pred": row["empty"]["prediction"], "prompts": row["prompts"]}
    return rows


def image_folder(data: Path, out: Path, count: int = 16) -> Path:
    """Links to up to `count` training-split images of `data` (an int8 calibration set that the validation
    split does not score)."""
    from edgesam.data import load_dataset
    from edgesam.eval import labelled_images, train_val

    train, _ = train_val(labelled_images(load_dataset(data)), 0.2, 0)
    out.mkdir(parents=True, exist_ok=True)
    step = max(1, len(train.records) // count)
    for record in train.records[::step][:count]:
        link = out / f"{record.class_name}_{Path(record.image_path).name}"
        if not link.exists():
            link.symlink_to(Path(record.image_path).resolve())
    return out


def machine_line(env: dict) -> str:
    from edgesam_runtime.envinfo import describe_cpu

    return describe_cpu(env["cpu"])
