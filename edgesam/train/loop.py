"""The training loop. It does no file or console I/O: `Trainer.run()` yields events (dicts) and
the caller (`edgesam.train.run`) records them, saves checkpoints and draws the progress bar.

Determinism: every sample's augmentation and prompts come from `default_rng([seed, epoch, index])`
and the epoch order from `default_rng([seed, epoch])`, so data does not depend on workers, ranks or
where a resumed run restarted; the torch RNG (LoRA dropout) is saved in the resume state, and the
data loader draws from its own generator so that it never advances the torch RNG.

Resume points: `state_dict()` taken at a "step" or "validating" event records how many batches of
the current epoch were consumed; a run resumed from it skips exactly those (the same batches, in the
same order) and continues as if it had never stopped.
"""
from __future__ import annotations

import contextlib
import math
import time

import numpy as np
import torch

from edgesam.models.decode import decode_all
from edgesam_runtime.envinfo import cpu_features, has_bf16_math
from edgesam_runtime.roi import mask_grid
from edgesam.train.batches import PromptConfig, collate, prepare_sample
from edgesam.train.optim import adamw, warmup_cosine
from edgesam.train.selection import EpochRule, class_groups
from edgesam.train.losses import mask_loss, segmentation_loss


class TrainSet(torch.utils.data.Dataset):
    """Dataset records -> TrainItem, seeded per (epoch, record)."""

    def __init__(self, dataset, cfg, image_size: int, augmenter=None, fine_grid: int | None = None):
        self.dataset, self.cfg, self.image_size, self.augmenter = dataset, cfg, image_size, augmenter
        self.fine_grid = fine_grid  # a refiner's mask grid: its targets are prepared too
        self.prompt_cfg = PromptConfig(cfg.box_prob, cfg.box_jitter, cfg.n_pos, cfg.n_neg)
        self.framing = cfg.framing
        self.epoch = 0

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        rng = np.random.default_rng([self.cfg.seed, self.epoch, i])
        return prepare_sample(self.dataset.load(i), self.image_size, rng, self.prompt_cfg,
                              self.cfg.objects_per_image, self.augmenter, self.framing, self.fine_grid)


def replay_slots(batch_size: int, share: float) -> int:
    """Items of each batch drawn from replayed data (at least one, and at least one new item)."""
    return min(batch_size - 1, max(1, round(share * batch_size)))


def epoch_order(n: int, seed: int, epoch: int, rank: int = 0, world: int = 1, replay: int = 0,
                batch_size: int = 1, replay_share: float = 0.0) -> list[int]:
    """This rank's shard of the epoch's order of item indices, padded so every rank gets as many items.

    With `replay` replayed items (indices n .. n + replay - 1, after the n new ones), every batch holds
    `replay_slots` of them beside the new items: the epoch is the new data once, each batch mixed.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n).tolist()
    if replay:
        old = replay_slots(batch_size, replay_share)
        new = batch_size - old
        pool = (n + rng.permutation(replay)).tolist()
        mixed = []
        for b in range(math.ceil(n / new)):
            mixed += order[b * new:(b + 1) * new]
            mixed += [pool[(b * old + j) % replay] for j in range(old)]
        order = mixed
    total = len(order)
    per_rank = math.ceil(total / world)
    order += order[: per_rank * world - total]
    return order[rank::world]


class LossModule(torch.nn.Module):
    """Encoder + per-image decoder calls + loss, as one forward (what DDP wraps).

    `images` stacks every item's encoder inputs: one image per item, or (ROI framing) one crop per
    object, decoded paired with its own prompt. A model with a refiner (`sam.mask_refiner`) is also
    trained on its finer mask of the single-mask output, against targets on its grid; the decoder's
    own loss stays, so its low-res logits keep meaning what the refiner is given.
    """

    def __init__(self, sam, loss: str = "focal_dice"):
        super().__init__()
        self.sam, self.loss = sam, loss

    def forward(self, images, items, features=None):
        feats = self.sam.image_encoder(images) if features is None else features
        if _all_paired(items):
            return self._paired(images, feats, items)
        total, parts, n = 0.0, {}, len(items)
        start = 0
        for item in items:
            count = item.image.shape[0]
            low, iou = decode_all(self.sam, feats[start:start + count], item.coords, item.labels, item.mask_input)
            sel = slice(1, None) if item.multimask else slice(0, 1)
            loss, p = segmentation_loss(low[:, sel], item.targets, iou[:, sel], self.loss)
            if self.refiner is not None and not item.multimask:
                fine_loss, fine_parts = self._fine(images[start:start + count], low[:, :1], item.fine_targets)
                loss, p = loss + fine_loss, {**p, **fine_parts}
            start += count
            total = total + loss / n
            for k, v in p.items():
                parts[k] = parts.get(k, 0.0) + v.item() / n
        return total, parts

    @property
    def refiner(self):
        return getattr(self.sam, "mask_refiner", None)

    def _fine(self, images, low, targets):
        if targets is None:
            raise ValueError("training a model with a refiner needs targets on its grid (TrainSet fine_grid)")
        return mask_loss(self.refiner(images, low), targets, self.loss)

    def _paired(self, images, feats, items):
        """ROI crops: every crop of the batch in one decoder call (a third of the step time saved on a
        CPU over one call per image); the loss averages over crops."""
        cat = lambda name: torch.cat([getattr(i, name) for i in items])  # noqa: E731
        mask_input = cat("mask_input") if items[0].mask_input is not None else None
        low, iou = decode_all(self.sam, feats, cat("coords"), cat("labels"), mask_input)
        loss, parts = segmentation_loss(low[:, :1], cat("targets"), iou[:, :1], self.loss)
        if self.refiner is not None:
            fine_loss, fine_parts = self._fine(images, low[:, :1], cat("fine_targets"))
            loss, parts = loss + fine_loss, {**parts, **fine_parts}
        return loss, {k: v.item() for k, v in parts.items()}


def _all_paired(items) -> bool:
    """Every item is one crop per prompt set (ROI framing), with prompts of one shape."""
    return len(items) > 0 and all(
        i.image.shape[0] == i.coords.shape[0] and not i.multimask and i.coords.shape[1] == items[0].coords.shape[1]
        and (i.mask_input is None) == (items[0].mask_input is None) for i in items)


def autocast_context(cfg, device: torch.device):
    """bf16 autocast by default (`amp: auto`) on CUDA and on CPUs with bf16 math, fp32 elsewhere."""
    mode = resolved_amp(cfg.amp, device)
    if mode == "off":
        return contextlib.nullcontext(), None
    dtype = torch.float16 if mode == "fp16" else torch.bfloat16
    scaler = torch.amp.GradScaler(device.type) if mode == "fp16" else None
    return torch.autocast(device.type, dtype=dtype), scaler


def resolved_amp(amp: str, device: torch.device) -> str:
    """`auto` -> bf16 on CUDA and on a CPU with bf16 math (AVX512_BF16, AMX), else off. On such a CPU bf16
    trained the scratch recipe 1.12x faster to the same val mIoU (0.808 vs 0.809; benchmarks/finetune/
    cpu_amp.md); without bf16 math it would be emulated, slower than fp32."""
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16"
    return "bf16" if device.type == "cpu" and has_bf16_math(cpu_features()) else "off"


def memory_now(device: torch.device) -> float:
    """Peak memory in GiB since `reset_peak_memory`: the CUDA allocator's peak, else the process's peak
    resident memory (Linux's VmHWM; elsewhere the peak over the process's life, ru_maxrss)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 30
    return process_memory_gib("VmHWM")


def process_memory_gib(field: str) -> float:
    """A memory field of /proc/self/status (VmHWM: peak, VmRSS: now) in GiB; elsewhere the peak so far."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def reset_peak_memory(device: torch.device) -> None:
    """Start the peak of `memory_now` afresh, so a run in a long-lived process (a notebook, the
    pipeline, a test session) reports its own peak, not one of an earlier job."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:  # "5" resets the peak resident set size (Linux)
            f.write("5")
    except OSError:
        pass


class Trainer:
    def __init__(self, cfg, strategy, train_ds, val_ds, image_size, device, augmenter=None, cache=None,
                 validate=None, rank=0, world=1, ddp_module=None, replay_ds=None):
        self.cfg, self.strategy, self.device = cfg, strategy, device
        self.sam = strategy.sam
        self.new_items = len(train_ds)  # replayed items follow them in the train set
        self.rule = EpochRule(class_groups(train_ds, replay_ds), cfg.max_forgetting / 100)
        self.replay_items = 0 if replay_ds is None else len(replay_ds)
        if replay_ds is not None:
            train_ds = train_ds.joined(replay_ds)
        refiner = getattr(self.sam, "mask_refiner", None)
        fine_grid = None if refiner is None else mask_grid(image_size, refiner.spec)
        self.train_set = TrainSet(train_ds, cfg, image_size, augmenter, fine_grid)
        self.val_ds, self.validate = val_ds, validate
        self.cache, self.rank, self.world = cache, rank, world
        self.module = ddp_module or LossModule(self.sam, cfg.loss)
        self.optimizer = adamw([{"params": g["params"], "lr": g["lr"], "name": g["name"]} for g in strategy.groups],
                               weight_decay=cfg.weight_decay)
        self.steps_per_epoch = math.ceil(math.ceil(len(self.epoch_items()) / world) / (cfg.batch_size * cfg.grad_accum))
        self.total_steps = self.steps_per_epoch * cfg.epochs
        if cfg.max_steps:
            self.total_steps = min(self.total_steps, cfg.max_steps)
        self.scheduler = warmup_cosine(self.optimizer, cfg.warmup_steps, self.total_steps)
        self.autocast, self.scaler = autocast_context(cfg, device)
        self.step, self.epoch, self.best, self.bad_epochs = 0, 0, -1.0, 0
        self.batches_done = 0  # loader batches of the current epoch already trained on (the resume point)
        self.data_signature: str | None = None  # recorded so a resumed run can tell the dataset changed
        self.epoch_loss, self.epoch_images, self.epoch_time = [], 0, 0.0
        self.history: list[dict] = []

    # ------------------------------------------------------------------ resume state
    def state_dict(self) -> dict:
        """Everything a resumed run needs; consistent at every event `run()` yields."""
        return {
            "trainable": {k: v.clone() for k, v in self.strategy.trainable_state().items()},
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "step": self.step, "epoch": self.epoch, "best": self.best, "bad_epochs": self.bad_epochs,
            "batches_done": self.batches_done, "epoch_loss": list(self.epoch_loss),
            "epoch_images": self.epoch_images, "epoch_time": self.epoch_time,
            "history": self.history, "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "config": self.cfg.to_dict(), "data_signature": self.data_signature,
        }

    def load_state_dict(self, state: dict) -> None:
        load_trainable(self.sam, state["trainable"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step, self.epoch, self.best = state["step"], state["epoch"], state["best"]
        self.bad_epochs, self.history = state["bad_epochs"], list(state["history"])
        self.batches_done = state.get("batches_done", 0)
        self.epoch_loss = list(state.get("epoch_loss", []))
        self.epoch_images, self.epoch_time = state.get("epoch_images", 0), state.get("epoch_time", 0.0)
        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    @property
    def stopped_early(self) -> bool:
        return bool(self.cfg.patience) and self.bad_epochs >= self.cfg.patience

    @property
    def finished(self) -> bool:
        """Nothing left to run: every epoch (or max_steps) trained and validated, or stopped early."""
        running = self.epoch < self.cfg.epochs and (self.step < self.total_steps or self.batches_done)
        return self.stopped_early or not running

    # ------------------------------------------------------------------ loop
    def loader(self):
        """This epoch's batches after the `batches_done` already trained on (all of them in a fresh epoch)."""
        self.train_set.epoch = self.epoch
        order = self.epoch_items(self.epoch, self.rank, self.world)
        order = order[self.batches_done * self.cfg.batch_size:]
        # The loader's own generator (it draws a base seed per epoch): drawing from the global torch RNG
        # would shift LoRA dropout by where a run was resumed.
        generator = torch.Generator().manual_seed(self.cfg.seed * 100_003 + self.epoch)
        return torch.utils.data.DataLoader(
            torch.utils.data.Subset(self.train_set, order), batch_size=self.cfg.batch_size, shuffle=False,
            num_workers=self.cfg.num_workers, collate_fn=collate, pin_memory=self.device.type == "cuda",
            generator=generator)

    def epoch_items(self, epoch: int = 0, rank: int = 0, world: int = 1) -> list[int]:
        """Indices of this rank's items in `epoch`, in order (new data once, replayed items mixed in)."""
        share = self.cfg.replay_source[1] if self.replay_items else 0.0
        return epoch_order(self.new_items, self.cfg.seed, epoch, rank, world, self.replay_items,
                           self.cfg.batch_size, share)

    def run(self):
        """Generator of events until the epochs, `max_steps` or patience run out.

        Events: start, start_scored (epoch 0: the starting model validated before the first step;
        preceded by validating), step (after each optimizer step), validating (training of the epoch
        done, validation next), epoch, early_stop, done.
        """
        yield {"state": "start", "figures": {"total_steps": self.total_steps, "start_epoch": self.epoch,
                                             "start_step": self.step}}
        if not self.history and self.step == 0 and self.validate is not None:
            yield {"state": "validating", "figures": {"epoch": -1, "step": 0, "val_images": self.validation_images()}}
            yield self.score_start()
        while not self.finished:
            yield from self.train_epoch()
            validate = self.validation_due()
            if validate:
                yield {"state": "validating", "figures": {"epoch": self.epoch, "step": self.step,
                                                          "val_images": self.validation_images()}}
            yield self.end_epoch(validate)
            if self.stopped_early:
                yield {"state": "early_stop", "message": f"no val mIoU gain for {self.bad_epochs} epochs"}
        yield {"state": "done", "figures": {"best_score": self.best, "steps": self.step, "epochs": self.epoch}}

    def score_start(self) -> dict:
        """Epoch 0: the starting model scored before the first step, the figure every epoch must beat.

        It is the run's first `best`, so a run in which no epoch beats it ends holding the start."""
        val = self.validate(self.sam)
        row = {"epoch": 0, "step": 0, "train_loss": float("nan"), "val_miou": val["miou"], "val_dice": val["dice"],
               "img_s": float("nan"), "lr": 0.0, "mem_gib": memory_now(self.device), "per_class": val["per_class"]}
        self.history.append(row)
        self.best = self.rule.score(row)
        return {"state": "start_scored", "improved": True, "validated": True, "figures": row}

    @property
    def start_row(self) -> dict | None:
        """The epoch-0 row (the starting model's scores), when the run scored it."""
        return self.history[0] if self.history and self.history[0]["epoch"] == 0 else None

    @property
    def kept_start(self) -> bool:
        """No validated epoch beat the starting model: `best` holds the start's weights."""
        start = self.start_row
        return start is not None and self.rule.best(self.history) is start

    def validation_due(self) -> bool:
        """Validate every `val_every` epochs and always after the last one (validation costs training time)."""
        last = self.epoch + 1 >= self.cfg.epochs or self.step >= self.total_steps
        return last or (self.epoch + 1) % self.cfg.val_every == 0

    def validation_images(self) -> int:
        n = len(self.val_ds) if self.val_ds is not None else 0
        return min(n, self.cfg.val_max_images) if self.cfg.val_max_images else n

    def train_epoch(self):
        self.sam.train()
        if self.batches_done == 0:  # a fresh epoch; a resumed one keeps what its first part measured
            self.epoch_loss, self.epoch_images, self.epoch_time = [], 0, 0.0
        if self.step >= self.total_steps:  # resumed after the last step, before its validation
            return
        micro, t0, images, loss, parts = 0, time.perf_counter(), 0, 0.0, {}
        for batch in self.loader():
            self.batches_done += 1
            if batch is None:
                continue
            batch = batch.to(self.device)
            loss, parts = self.forward(batch)
            micro += 1
            images += batch.images.shape[0]
            if micro % self.cfg.grad_accum:
                continue
            yield self.step_event(loss, parts, images, t0)
            t0, images = time.perf_counter(), 0
            if self.step >= self.total_steps:
                return
        if micro % self.cfg.grad_accum:  # the epoch's last, partial accumulation is a step too
            yield self.step_event(loss, parts, images, t0)

    def step_event(self, loss: float, parts: dict, images: int, t0: float) -> dict:
        """Optimizer step, then the figures of the step (the state is a consistent resume point here)."""
        lr = self.optimizer_step()
        dt = time.perf_counter() - t0
        self.epoch_time += dt
        self.epoch_images += images
        self.epoch_loss.append(loss)
        return {"state": "step", "figures": {"epoch": self.epoch, "step": self.step, "loss": loss, **parts,
                                             "lr": lr, "img_s": images * self.world / dt,
                                             "mem_gib": memory_now(self.device)}}

    def forward(self, batch):
        features = self.cache.features(batch.images) if self.cache is not None else None
        with self.autocast:
            loss, parts = self.module(batch.images, batch.items, features)
        scaled = loss / self.cfg.grad_accum
        (self.scaler.scale(scaled) if self.scaler else scaled).backward()
        return loss.item(), parts

    def optimizer_step(self) -> float:
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        return self.optimizer.param_groups[-1]["lr"]

    def end_epoch(self, validate: bool = True) -> dict:
        val = self.validate(self.sam) if validate and self.validate is not None else {}
        miou = val.get("miou", float("nan"))
        row = {"epoch": self.epoch + 1, "step": self.step,
               "train_loss": float(np.mean(self.epoch_loss)) if self.epoch_loss else float("nan"),
               "val_miou": miou, "val_dice": val.get("dice", float("nan")),
               "img_s": self.epoch_images * self.world / self.epoch_time if self.epoch_time else float("nan"),
               "lr": self.optimizer.param_groups[-1]["lr"], "mem_gib": memory_now(self.device),
               "per_class": val.get("per_class", {})}
        improved = self.rule.beats(row, self.best, self.start_row)
        if improved:
            self.best, self.bad_epochs = self.rule.score(row), 0
        elif val:  # patience counts validations, not the epochs trained between them
            self.bad_epochs += 1
        self.history.append(row)
        self.epoch += 1
        self.batches_done = 0
        return {"state": "epoch", "improved": improved, "validated": bool(val), "figures": row}


def load_trainable(sam, tensors: dict) -> None:
    """Copy trained tensors into `sam` by name; every name must exist and match in shape."""
    params = dict(sam.named_parameters())
    missing = sorted(set(tensors) - set(params))
    if missing:
        raise KeyError(f"trained weights name parameters the model does not have: {missing[:5]}")
    with torch.no_grad():
        for name, t in tensors.items():
            if params[name].shape != t.shape:
                raise ValueError(f"{name}: shape {tuple(t.shape)} does not match the model's {tuple(params[name].shape)}")
            params[name].copy_(t)
