"""The distillation loops. No file or console I/O here: `Loop.run()` yields events and the caller
(`edgesam.distill.run`) records them, saves checkpoints and draws progress.

Stage 1 (`EmbeddingObjective`): only the student's image encoder trains, to reproduce the teacher's
cached embedding of the same view (MSE, or MSE plus a cosine term per embedding location).
Stage 2 (`MaskObjective`, optional): encoder and decoder train end to end on the teacher's masks for
the view's box prompts (focal + Dice + IoU-head loss, as finetune), with the embedding MSE kept as
an anchor. Epoch order comes from `default_rng([seed, stage, epoch])`, so a resumed run sees the
same data as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from edgesam.models.decode import decode_all
from edgesam.train.losses import segmentation_loss
from edgesam.train.optim import adamw, warmup_cosine


@dataclass
class Item:
    """One training or validation unit: an encoder input with its teacher embedding and box prompts."""

    x: torch.Tensor  # (1, 3, S, S)
    teacher: torch.Tensor  # (1, C, e, e) float32
    coords: torch.Tensor  # (K, N, 2) box prompts in the input frame
    labels: torch.Tensor  # (K, N)
    mask_input: torch.Tensor | None = None  # (K, 1, S/4, S/4) dense box prompt of models that take one


def embedding_figures(student_emb: torch.Tensor, teacher_emb: torch.Tensor) -> dict[str, torch.Tensor]:
    """MSE, mean cosine per location, and relative squared error |s - t|^2 / |t|^2 (per image, averaged)."""
    mse = F.mse_loss(student_emb, teacher_emb)
    cos = F.cosine_similarity(student_emb, teacher_emb, dim=1).mean()
    dims = tuple(range(1, teacher_emb.dim()))
    rel = ((student_emb - teacher_emb).pow(2).sum(dims) / teacher_emb.pow(2).sum(dims).clamp(min=1e-12)).mean()
    return {"mse": mse, "cos": cos, "rel": rel}


def chunks(items: Iterable, size: int):
    """Lists of up to `size` consecutive items (items may be a generator: nothing is held beyond a chunk)."""
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class EmbeddingObjective:
    name, stream = "embed", 1  # stream: the stage's component of the epoch-order seed

    def __init__(self, loss: str = "mse", cos_weight: float = 1.0):
        self.loss_kind, self.cos_weight = loss, cos_weight

    def parameter_groups(self, student, lr: float) -> list[dict]:
        return [{"params": list(student.image_encoder.parameters()), "lr": lr, "name": "encoder"}]

    def loss(self, student, items: list[Item]):
        s = student.image_encoder(torch.cat([i.x for i in items]))
        f = embedding_figures(s, torch.cat([i.teacher for i in items]))
        total = f["mse"] + (self.cos_weight * (1.0 - f["cos"]) if self.loss_kind == "mse+cos" else 0.0)
        return total, {"mse": f["mse"].item(), "cos": f["cos"].item()}

    @torch.no_grad()
    def validate(self, student, items: Iterable[Item], batch: int) -> dict:
        sums, n = {"mse": 0.0, "cos": 0.0, "rel": 0.0}, 0
        for chunk in chunks(items, batch):
            f = embedding_figures(student.image_encoder(torch.cat([i.x for i in chunk])),
                                  torch.cat([i.teacher for i in chunk]))
            for k in sums:
                sums[k] += f[k].item() * len(chunk)
            n += len(chunk)
        return {f"val_{k}": v / max(n, 1) for k, v in sums.items()}

    @staticmethod
    def score(val: dict) -> float:
        return -val["val_mse"]  # higher is better


class MaskObjective(EmbeddingObjective):
    """Stage 2: end to end on the teacher's binarised masks for each item's box prompts.

    Validation adds the student's mask IoU against the teacher on the held-out box prompts, scored by
    `edgesam.eval` through `answers` (the teacher's masks, computed once): the figure the report shows.
    """

    name, stream = "mask", 2

    def __init__(self, teacher, embed_weight: float = 1.0, answers=None):
        super().__init__("mse")
        self.teacher, self.embed_weight, self.answers = teacher, embed_weight, answers

    def parameter_groups(self, student, lr: float) -> list[dict]:
        decoder = list(student.mask_decoder.parameters())
        return [{"params": list(student.image_encoder.parameters()), "lr": lr, "name": "encoder"},
                {"params": decoder, "lr": lr / 10, "name": "decoder"}]  # already the teacher's: nudge it

    def _targets(self, item: Item) -> torch.Tensor:
        with torch.no_grad():
            low, _ = decode_all(self.teacher, item.teacher, item.coords, item.labels, item.mask_input)
        return (low[:, :1] > 0).float()

    def loss(self, student, items: list[Item]):
        s = student.image_encoder(torch.cat([i.x for i in items]))
        embed = F.mse_loss(s, torch.cat([i.teacher for i in items]))
        mask = torch.zeros(())
        for k, item in enumerate(items):
            low, iou = decode_all(student, s[k:k + 1], item.coords, item.labels, item.mask_input)
            part, _ = segmentation_loss(low[:, :1], self._targets(item), iou[:, :1])
            mask = mask + part / len(items)
        total = mask + self.embed_weight * embed
        return total, {"mse": embed.item(), "mask": mask.item()}

    @torch.no_grad()
    def validate(self, student, items: Iterable[Item], batch: int) -> dict:
        """Embedding figures plus mask IoU vs the teacher on the held-out box prompts (both-empty pairs left out)."""
        out = super().validate(student, items, batch)
        out["val_mask_iou"], out["val_empty_share"] = float("nan"), float("nan")
        if self.answers is not None:
            box = self.answers.box_agreement(student)
            mean = box["iou_vs_teacher"]["mean"]
            out["val_mask_iou"] = float("nan") if mean is None else mean
            out["val_empty_share"] = box["teacher_empty_share"]
        return out

    @staticmethod
    def score(val: dict) -> float:
        return val["val_mask_iou"] if val["val_mask_iou"] == val["val_mask_iou"] else -val["val_mse"]


class Loop:
    """Epochs over `units` (opaque ids) for one objective; `load(unit) -> Item` supplies the data."""

    def __init__(self, student, objective, units: list, load: Callable[[object], Item], val_units: list, *,
                 epochs: int, batch_size: int, lr: float, weight_decay: float, warmup_steps: int, grad_clip: float,
                 max_steps: int | None, seed: int, autocast=None):
        self.autocast = autocast or contextlib.nullcontext()  # reused: torch.autocast objects re-enter
        self.student, self.objective, self.units, self.load = student, objective, list(units), load
        self.val_units, self.batch_size, self.epochs, self.seed = val_units, batch_size, epochs, seed
        self.grad_clip = grad_clip
        self.groups = objective.parameter_groups(student, lr)
        self.optimizer = adamw(self.groups, weight_decay=weight_decay)
        self.steps_per_epoch = math.ceil(len(self.units) / batch_size)
        self.total_steps = self.steps_per_epoch * epochs if not max_steps else min(max_steps, self.steps_per_epoch * epochs)
        self.scheduler = warmup_cosine(self.optimizer, warmup_steps, self.total_steps)
        self.step, self.epoch, self.best = 0, 0, -math.inf
        self.history: list[dict] = []

    # ------------------------------------------------------------------ resume state
    def trainable_state(self) -> dict:
        names = {id(p) for g in self.groups for p in g["params"]}
        return {k: v.detach().clone() for k, v in self.student.named_parameters() if id(v) in names}

    def state_dict(self) -> dict:
        return {"stage": self.objective.name, "trainable": self.trainable_state(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "step": self.step, "epoch": self.epoch, "best": self.best, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        if state["stage"] != self.objective.name:
            raise ValueError(f"resume: the saved state is of stage {state['stage']!r}, not {self.objective.name!r}")
        params = dict(self.student.named_parameters())
        with torch.no_grad():
            for name, value in state["trainable"].items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch, self.best = state["step"], state["epoch"], state["best"]
        self.history = list(state["history"])

    @property
    def finished(self) -> bool:
        return self.epoch >= self.epochs or self.step >= self.total_steps

    # ------------------------------------------------------------------ loop
    def run(self):
        """Events: start, step (per optimizer step), epoch (with validation; `improved` flags a new best), done."""
        yield {"state": "start", "stage": self.objective.name,
               "figures": {"total_steps": self.total_steps, "start_epoch": self.epoch, "units": len(self.units)}}
        while not self.finished:
            yield from self._epoch()
            yield self._end_epoch()
        yield {"state": "done", "stage": self.objective.name, "figures": {"best": self.best, "steps": self.step}}

    def _epoch(self):
        self.student.train()
        order = np.random.default_rng([self.seed, self.objective.stream, self.epoch]).permutation(len(self.units))
        self._losses, self._time, self._seen = [], 0.0, 0
        for start in range(0, len(order), self.batch_size):
            if self.step >= self.total_steps:
                break
            t0 = time.perf_counter()
            items = [self.load(self.units[i]) for i in order[start:start + self.batch_size]]
            with self.autocast:
                loss, parts = self.objective.loss(self.student, items)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.grad_clip:
                torch.nn.utils.clip_grad_norm_([p for g in self.groups for p in g["params"]], self.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            self.step += 1
            dt = time.perf_counter() - t0
            self._time += dt
            self._seen += len(items)
            self._losses.append(loss.item())
            yield {"state": "step", "stage": self.objective.name,
                   "figures": {"epoch": self.epoch, "step": self.step, "loss": loss.item(), **parts,
                               "lr": self.optimizer.param_groups[0]["lr"], "img_s": len(items) / dt}}

    def _end_epoch(self) -> dict:
        self.student.eval()
        val = self.objective.validate(self.student, (self.load(u) for u in self.val_units), self.batch_size)
        score = self.objective.score(val)
        improved = score > self.best
        self.best = max(self.best, score)
        self.epoch += 1
        row = {"stage": self.objective.name, "epoch": self.epoch, "step": self.step,
               "train_loss": float(np.mean(self._losses)) if self._losses else float("nan"), **val,
               "lr": self.optimizer.param_groups[0]["lr"], "img_s": self._seen / self._time if self._time else float("nan")}
        self.history.append(row)
        return {"state": "epoch", "stage": self.objective.name, "improved": improved, "figures": row}
