"""Run-dir files of a distillation: config.yaml, status.jsonl, metrics.csv and curves.png.

Same shapes as finetune's run dirs: status lines via `edgesam.utils.status` (one append per line, so
line software can tail them), every other file written atomically.
"""
from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path

from edgesam_runtime.files import atomic_path, write_text_atomic
from edgesam.utils.status import append_status

METRIC_COLUMNS = ("stage", "epoch", "step", "train_loss", "val_mse", "val_cos", "val_rel", "val_mask_iou",
                  "val_empty_share", "lr", "img_s")
STAGE = "distill"


PLOT_EVERY_S = 60.0


class DistillRecorder:
    def __init__(self, run_dir: str | Path, labels: dict):
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.labels = labels  # e.g. {"student": "vit_n", "teacher": "vit_b"}: on every status line and plot
        self._plotted = time.monotonic()

    def status(self, state: str, message: str = "", figures: dict | None = None) -> None:
        append_status(self.dir / "status.jsonl", STAGE, state, message, figures, **self.labels)

    def config(self, text: str) -> None:
        write_text_atomic(self.dir / "config.yaml", text)

    def metrics(self, history: list[dict], plot: bool = False) -> None:
        """metrics.csv every time; curves.png when `plot`, or when the last one is a minute old (a plot
        costs about a second: short epochs would spend more time drawing than training)."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(METRIC_COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k, "") for k in METRIC_COLUMNS})
        write_text_atomic(self.dir / "metrics.csv", buf.getvalue())
        if plot or time.monotonic() - self._plotted >= PLOT_EVERY_S:
            self.plot(history)
            self._plotted = time.monotonic()

    def plot(self, history: list[dict]) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps = [r["step"] for r in history]
        fig, (a, b, c) = plt.subplots(1, 3, figsize=(12, 3.5))
        a.plot(steps, [r["train_loss"] for r in history], marker="o")
        a.set(xlabel="step", ylabel="train loss", title="loss (stage 1: embeddings; 2: masks)", yscale="log")
        b.plot(steps, [r["val_mse"] for r in history], marker="o", label="embedding MSE")
        b.plot(steps, [r["val_rel"] for r in history], marker="s", label="relative error")
        b.set(xlabel="step", title="held-out vs teacher", yscale="log")
        b.legend()
        c.plot(steps, [r["val_cos"] for r in history], marker="o", label="embedding cosine")
        masks = [(r["step"], r["val_mask_iou"]) for r in history if _finite(r.get("val_mask_iou"))]
        if masks:
            c.plot(*zip(*masks), marker="s", label="mask IoU (stage 2)")
        c.set(xlabel="step", title="held-out agreement", ylim=(0, 1))
        c.legend()
        fig.suptitle(" | ".join(f"{k}: {v}" for k, v in self.labels.items()))
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.15, top=0.82, wspace=0.25)  # tight_layout: 1 s a plot
        with atomic_path(self.dir / "curves.png") as tmp:
            fig.savefig(tmp, format="png", dpi=90)
        plt.close(fig)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)
