"""Run-directory recorder: turns the loop's events into files (the loop itself writes nothing).

status.jsonl (one JSON line per event), metrics.csv, curves.png, config.yaml. All writes atomic
except the append-only status log, whose lines are each written with a single write call.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from edgesam_runtime.files import atomic_path, write_text_atomic
from edgesam.utils.status import append_status

METRIC_COLUMNS = ("epoch", "step", "train_loss", "val_miou", "val_dice", "img_s", "lr", "mem_gib")


class RunRecorder:
    def __init__(self, run_dir: Path, labels: dict):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.labels = labels  # e.g. {"init": "random", "strategy": "full"}: on every line and plot

    def status(self, state: str, message: str = "", figures: dict | None = None, stage: str = "finetune"):
        append_status(self.dir / "status.jsonl", stage, state, message, figures, **self.labels)

    def config(self, config_yaml: str):
        write_text_atomic(self.dir / "config.yaml", config_yaml)

    def metrics(self, history: list[dict]):
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(METRIC_COLUMNS) + ["init"])
        writer.writeheader()
        for row in history:
            writer.writerow({**{k: row[k] for k in METRIC_COLUMNS}, "init": self.labels.get("init", "")})
        write_text_atomic(self.dir / "metrics.csv", buf.getvalue())
        self.plot(history)

    def plot(self, history: list[dict]):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [r["epoch"] for r in history]
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
        a.plot(epochs, [r["train_loss"] for r in history], marker="o")
        a.set(xlabel="epoch", ylabel="train loss", title="loss")
        validated = [r for r in history if r["val_miou"] == r["val_miou"]]  # epochs between validations are NaN
        b.plot([r["epoch"] for r in validated], [r["val_miou"] for r in validated], marker="o", label="val mIoU")
        b.plot([r["epoch"] for r in validated], [r["val_dice"] for r in validated], marker="s", label="val Dice")
        b.set(xlabel="epoch", title="validation (box prompts)")
        b.legend()
        fig.suptitle(" | ".join(f"{k}: {v}" for k, v in self.labels.items()))
        fig.tight_layout()
        with atomic_path(self.dir / "curves.png") as tmp:
            fig.savefig(tmp, format="png", dpi=90)
        plt.close(fig)
