"""`finetune(config)`: build the model and data, run the loop, record everything in the run dir."""
from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.checkpoint import checkpoint
from tqdm import tqdm

from edgesam.data import Augmenter, load_dataset
from edgesam.data.check import require_valid_dataset
from edgesam.data.io import DataError
from edgesam.eval import build_plan, evaluate, model_adapter
from edgesam.eval.ceiling import CEILING_FLOOR, Grid, below_floor, class_ceilings
from edgesam.eval.split import train_val
from edgesam.models import arch_for, build_sam, load_model, save_checkpoint
from edgesam.models.attention import use_efficient_attention
from edgesam.models.checkpoint import diagnose_unreadable
from edgesam.models.refiner import attach_refiner
from edgesam.train.adapter import adapter_bytes, write_adapter
from edgesam.train.cache import EmbeddingCache
from edgesam.train.config import FinetuneConfig
from edgesam.train.loop import LossModule, Trainer, process_memory_gib, reset_peak_memory, resolved_amp
from edgesam.train.record import RunRecorder
from edgesam.train.selection import class_groups, group_mean
from edgesam.train.strategies import apply_strategy, lora_settings
from edgesam.utils.config import ConfigError
from edgesam_runtime.files import atomic_path, sha256_file
from edgesam_runtime.roi import (WHOLE_IMAGE, InputFraming, framing_of, mask_grid, refine_spec_of, with_framing,
                                 with_refiner)

LAST, BEST, BASE = "last.pt", "best.pt", "base.pth"
# last.pt is rewritten after this many optimizer steps or this much training time, whichever comes
# first (and before every validation), so a killed run loses at most about a minute of training.
CHECKPOINT_EVERY_STEPS = 500
CHECKPOINT_EVERY_S = 60.0
# Settings a resumed run may change; any other difference would make it a different run.
RESUME_MAY_CHANGE = ("epochs", "max_steps", "patience", "device", "num_workers", "val_max_images", "out", "cache_dir")


class ResumeError(ValueError):
    """A run dir that cannot be resumed: nothing there, an unreadable last.pt, or other settings."""


@dataclass
class FinetuneResult:
    run_dir: str
    strategy: str
    init: str
    best_miou: float
    best_dice: float
    start_miou: float  # the starting model's val mIoU (epoch 0), NaN when the run did not score it
    kept_start: bool  # no epoch beat the start: best holds the start's weights
    best_epoch: int
    trainable_params: int
    images_per_s: float
    peak_mem_gib: float
    wall_s: float
    adapter_bytes: int
    epochs: int
    steps: int
    history: list = field(default_factory=list)
    class_groups: dict = field(default_factory=dict)  # {"new": [...], "replayed": [...]} class names
    rule: str = "val mIoU"  # what ranked the epochs (edgesam.train.selection.EpochRule.description)

    def to_dict(self):
        return asdict(self)


# ---------------------------------------------------------------------------- setup helpers
def resolve_device(cfg) -> torch.device:
    if "LOCAL_RANK" in os.environ and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def init_distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world) under torchrun (nccl on CUDA, gloo on CPU); (0, 1) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return dist.get_rank(), world


def build_base(cfg, run_dir: Path):
    """(sam, arch, base_path, base_sha256). Random init writes its initial weights as the base.

    The base records its own input framing (random init: the config's, else whole image); see
    `frame_as_trained` for the framing the run trains.
    """

    if cfg.init == "random":
        torch.manual_seed(cfg.seed)
        arch = arch_for(cfg.model, cfg.image_size)
        arch = with_framing(arch.replace(extra={**arch.extra, "init": "random"}), cfg.framing or WHOLE_IMAGE)
        sam = build_sam(arch)
        base = run_dir / BASE
        if not base.exists():
            save_checkpoint(sam, base, arch)
        else:  # resumed run: the recorded base is the truth
            sam, arch = load_model(None, base)
    else:
        sam, arch = load_model(cfg.model, cfg.checkpoint, cfg.image_size)
        base = Path(cfg.checkpoint)
    return sam, arch, base.resolve(), sha256_file(base)


def frame_as_trained(cfg, sam, arch):
    """(config, arch) with the framing this run trains: the config's where it sets one, else the base's.

    The trained model records it (arch, `sam.framing`), so it is used the way it was trained; a model
    trained in ROI framing is fine-tuned in ROI framing without anyone passing it again.
    """
    cfg = cfg.with_framing_of(framing_of(arch))
    sam.framing = cfg.framing
    return cfg, with_framing(arch, cfg.framing)


PREFLIGHT_OBJECTS = 50  # objects per class the preflight ceiling is measured on


def plan_refiner(cfg, sam, arch, train_ds) -> tuple[object, dict]:
    """(arch, preflight): the mask grid this run draws on, chosen before training.

    The IoU ceiling of the decoder's grid (edgesam.eval.ceiling) is measured per class on the training
    images; `refine: auto` adds a refiner when a class falls below the floor there, `on` always does,
    and a base that has one keeps it. A refiner added here starts as the identity (its residual is
    zero), so the start the run is scored against is the base itself. The preflight also names the
    classes whose ceiling on the chosen grid stays below the floor: no training lifts them past it.
    """

    spec = refine_spec_of(arch)
    if cfg.refine == "off" and spec is not None:
        raise ConfigError("refine: off, but the base checkpoint has a mask refiner (its masks are drawn on a "
                          f"{mask_grid(arch.image_size, spec)} px grid); leave refine at auto or on")
    framing, size = framing_of(arch), arch.image_size
    decoder = Grid(framing, size, size // 4)
    refined = Grid(framing, size, mask_grid(size, spec or cfg.refine_spec))
    ceilings = class_ceilings(train_ds, [decoder, refined], max_objects=PREFLIGHT_OBJECTS)
    add = spec is None and (cfg.refine == "on" or (cfg.refine == "auto" and below_floor(ceilings, decoder)))
    if add:
        spec = cfg.refine_spec
        attach_refiner(sam, spec)
        arch = with_refiner(arch, spec)
    drawn = refined if spec is not None else decoder
    preflight = {"floor": CEILING_FLOOR, "grid": drawn.describe(), "refined": spec is not None, "refiner_added": add,
                 "ceiling_decoder_grid": {c: v[decoder] for c, v in ceilings.items()},
                 "ceiling_refined_grid": {c: v[refined] for c, v in ceilings.items()},
                 "below_floor": below_floor(ceilings, drawn)}
    return arch, preflight


def preflight_message(preflight: dict) -> str:
    """One line: the grid masks are drawn on and each class's IoU ceiling there, and what falls short."""
    ceilings = preflight["ceiling_refined_grid" if preflight["refined"] else "ceiling_decoder_grid"]
    per_class = ", ".join(f"{c} {v:.2f}" for c, v in ceilings.items())
    msg = f"mask grid: {preflight['grid']}" + (" (refiner added: a class's ceiling on the decoder's grid is "
                                               "below the floor)" if preflight["refiner_added"] else "")
    msg += f"; IoU ceiling per class (tight boxes): {per_class}"
    if preflight["below_floor"]:
        low = ", ".join(f"{c} {v:.2f}" for c, v in preflight["below_floor"].items())
        fix = "a larger --image-size" + ("" if preflight["refined"] else " or --refine on")
        msg += (f"\nwarning: ceiling below {preflight['floor']:.2f} for {low}: the grid, not training, bounds "
                f"these classes; try {fix} (`edgesam data check` compares the framings)")
    return msg


def enable_gradient_checkpointing(sam) -> None:
    """Recompute each encoder block in the backward pass instead of storing its activations."""
    for block in sam.image_encoder.blocks:
        inner = block.forward
        block.forward = lambda x, _f=inner: checkpoint(_f, x, use_reentrant=False) if torch.is_grad_enabled() else _f(x)


def estimate_memory_gib(sam, strategy, cfg, image_size: int, device: torch.device, train_images: int = 0) -> dict:
    """Training-memory estimate in GiB of the figure finetune reports as its peak: the CUDA allocator's
    peak on a GPU, the process's peak resident memory on a CPU.

    Parts: weights; gradients + AdamW's two moments (trainable parameters only); the encoder's stored
    activations per block, after Korthikanti et al. (2022): ~34*s*h bytes in 16-bit for s tokens of
    width h, plus 5*heads*s^2 for attention maps the efficient attention does not keep, where s counts
    the padding of windowed blocks (a 32x32 grid in 14x14 windows is 42x42 tokens); the in-memory
    embedding cache of strategy decoder. On a CPU the process's resident memory when training starts
    (interpreter, libraries, weights) is measured instead of assumed: it is most of a small run's peak.
    Checked against measured peaks on a CPU (vit_t 64-256 px, vit_b 256-512 px, lora and full): the peak
    was at most 1.31x the estimate (benchmarks/memory).
    """
    enc = sam.image_encoder

    bytes_act = 2 if resolved_amp(cfg.amp, device) in ("bf16", "fp16") else 4
    total = sum(p.numel() for p in sam.parameters())
    trainable = strategy.trainable_params
    grid = image_size // 16
    h = enc.patch_embed.proj.out_channels
    act = 0.0
    if cfg.strategy != "decoder":
        n_blocks = cfg.partial_blocks if cfg.strategy == "partial" else len(enc.blocks)
        for blk in list(enc.blocks)[len(enc.blocks) - n_blocks:]:
            window = blk.window_size
            side = grid if window == 0 else math.ceil(grid / window) * window  # windowed blocks pad the grid
            s = side * side
            s_att = s if window == 0 else window ** 2
            n_win = 1 if window == 0 else s // s_att
            per = 34 * s * h * bytes_act / 2
            if not cfg.efficient_attention:
                per += 5 * blk.attn.num_heads * s_att ** 2 * n_win * bytes_act / 2
            act += per if not cfg.grad_checkpointing else s * h * bytes_act
    act *= cfg.batch_size
    gib = 2 ** 30
    est = {"weights": total * 4 / gib, "grads_and_adamw": trainable * 4 * 3 / gib, "activations": act / gib}
    if cfg.strategy == "decoder" and cfg.cache_dir is None:
        est["embedding_cache"] = train_images * sam.prompt_encoder.embed_dim * grid * grid * 4 / gib
    growth = sum(v for k, v in est.items() if k != "weights")  # what training adds to the weights
    if device.type == "cpu":  # measured: everything resident now, the weights included
        est["resident_now"] = _resident_gib()
        est["total"] = est["resident_now"] + growth
    else:
        est["total"] = est["weights"] + growth
    return est


def _resident_gib() -> float:
    """This process's resident memory now (Linux), else its peak so far."""
    return process_memory_gib("VmRSS")


# ---------------------------------------------------------------------------- resume and data
def run_config_path(out: str | Path) -> Path:
    """The config.yaml a `--resume` of the run in `out` starts from; ResumeError when there is no run."""
    path = Path(out) / "config.yaml"
    if not path.is_file() or not (Path(out) / LAST).is_file():
        raise ResumeError(f"{out}: nothing to resume (no {LAST}: a run writes it within its first minute of "
                          f"training); start the run without --resume, or give the --out of the run to continue")
    return path


def load_resume_state(run_dir: Path, cfg, data_signature: str, mode: bool | str = True) -> dict | None:
    """The resume state in `run_dir/last.pt`, checked against `cfg` and the dataset's signature.

    mode True (--resume): the state must exist. mode "auto": a run found unfinished is resumed, and
    None is returned when there is no run (or a finished one, which the caller refuses to overwrite).
    """
    path = run_dir / LAST
    if not path.is_file():
        if mode is True:
            run_config_path(run_dir)  # raises, with the message for a run dir without a run
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ResumeError(f"{path}: {diagnose_unreadable(path, exc)}") from exc
    if mode == "auto" and _finished(state, cfg):
        return None
    recorded = state.get("config")
    if recorded and cfg.framing is None and recorded.get("input_mode"):
        # the run resolved the framing it left open from its base (frame_as_trained) and recorded it
        cfg = cfg.with_framing_of(InputFraming(mode=recorded["input_mode"], roi_margin=recorded["roi_margin"],
                                               dense_box=recorded["dense_box"]))
    changed = settings_changed(recorded, cfg.to_dict())
    if changed:
        raise ResumeError(f"{path}: was written by a run with other settings ({'; '.join(changed)}); resume with "
                          f"the run's own settings (its config.yaml), or start a new run in another --out")
    if state.get("data_signature") not in (None, data_signature):
        raise ResumeError(f"{path}: the dataset {cfg.data} changed since this run started (files added, removed "
                          f"or resized); start a new run in another --out")
    return state


def _finished(state: dict, cfg) -> bool:
    """The recorded run has nothing left to do under `cfg` (the same rule as `Trainer.finished`)."""
    epochs_done = state["epoch"] >= cfg.epochs
    steps_done = cfg.max_steps is not None and state["step"] >= cfg.max_steps and not state.get("batches_done")
    stopped_early = bool(cfg.patience) and state["bad_epochs"] >= cfg.patience
    return epochs_done or steps_done or stopped_early


def data_signature(dataset) -> str:
    """A digest of the dataset's files (names and sizes): what a resumed run must find unchanged."""
    digest = hashlib.sha256()
    for rec in dataset.records:
        for path in (rec.image_path, rec.mask_path):
            if path is not None:
                digest.update(f"{rec.key}|{Path(path).name}|{Path(path).stat().st_size}\n".encode())
    return digest.hexdigest()


def settings_changed(recorded: dict | None, current: dict) -> list[str]:
    """'field: old -> new' for each setting that differs, except those a resumed run may change."""
    if recorded is None:  # a last.pt from before settings were recorded: trust the caller
        return []
    keys = sorted((set(recorded) | set(current)) - set(RESUME_MAY_CHANGE))
    # a setting added after the run was recorded ran at its default: a run started by an older edgesam resumes
    defaults = FinetuneConfig.defaults()
    was = {k: recorded[k] if k in recorded else defaults.get(k) for k in keys}
    return [f"{k}: {was[k]!r} -> {current.get(k)!r}" for k in keys if was[k] != current.get(k)]


def validated_dataset(cfg, progress: bool, path: str | None = None):
    """The labelled part of `path` (default `cfg.data`), after every file was read once (`edgesam data
    check`'s checks).

    Refuses, before any model is built, a dataset with a bad file, without images, with fewer than
    two labelled images (a train and a validation split) or without a single object to learn.
    """

    path = path or cfg.data
    bar = _bar(progress, desc=f"checking {Path(path).name}", unit="img")
    try:
        report = require_valid_dataset(path, cfg.min_area, on_image=bar.update if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    dataset = load_dataset(path, min_area=cfg.min_area)
    labelled = dataset.subset([i for i, r in enumerate(dataset.records) if r.labelled])
    if len(labelled) < 2:
        raise DataError(f"{path}: {len(labelled)} labelled image(s) (image + mask); finetune needs at least 2, "
                        "one to train on and one to validate with")
    if report.totals()["objects"] == 0:
        raise DataError(f"{path}: no mask holds an object of at least {cfg.min_area} px (--min-area); "
                        "nothing to learn from (are the masks 0/255 or instance ids?)")
    return labelled


@dataclass
class RunData:
    """The splits a run trains and validates on: the new data's, and the replayed data's where given."""

    train: object  # edgesam.data.Dataset: the new data's training split
    val: object  # validation: the new data's split, plus the replayed data's (old classes scored beside new)
    replay: object | None  # the replayed data's training split
    signature: str  # what a resumed run must find unchanged

    @property
    def class_groups(self) -> dict:
        """The new data's class names and the replayed data's (those not also in the new data)."""
        return class_groups(self.train, self.replay)

    @property
    def all_train(self):
        return self.train if self.replay is None else self.train.joined(self.replay)


def run_data(cfg, progress: bool) -> RunData:
    """Read and split the run's data (and `--replay`'s): both split by stem as `eval --split val` does."""
    labelled = validated_dataset(cfg, progress)
    train, val = train_val(labelled, cfg.val_fraction, cfg.split_seed)
    signature = data_signature(labelled)
    if cfg.replay_source is None:
        return RunData(train, val, None, signature)
    old = validated_dataset(cfg, progress, cfg.replay_source[0])
    old_train, old_val = train_val(old, cfg.val_fraction, cfg.split_seed)
    return RunData(train, val.joined(old_val), old_train, signature + ":" + data_signature(old))


def trained_on(cfg, arch) -> list[str]:
    """The datasets a model trained by this run has learned from: its base's (as the base records them),
    then this run's data and replayed data. Recorded with the model, so the next adaptation can replay them."""
    seen = list((arch.extra or {}).get("trained_on", []))
    for path in (cfg.data, cfg.replay_source[0] if cfg.replay_source else None):
        if path and str(Path(path).resolve()) not in seen:
            seen.append(str(Path(path).resolve()))
    return seen


def replay_hint(cfg, arch) -> str | None:
    """A line suggesting `--replay` when the base records data it was trained on and the run replays none."""
    earlier = [p for p in (arch.extra or {}).get("trained_on", []) if Path(p).resolve() != Path(cfg.data).resolve()]
    if cfg.replay_source is not None or not earlier:
        return None
    return (f"hint: the base was trained on {', '.join(earlier)}; adapting on {cfg.data} alone can cost its old "
            f"classes points (forgetting): add --replay {earlier[-1]} to mix them into every batch")


def _bar(progress: bool, **kw):
    if not progress:
        return None

    return tqdm(leave=False, **kw)


# ---------------------------------------------------------------------------- finetune
def finetune(config: FinetuneConfig, progress: bool = True, resume: bool | str = False,
             stop_after_epochs: int | None = None, checkpoint_every: int = CHECKPOINT_EVERY_STEPS,
             checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> FinetuneResult:
    """Train per `config`; with `resume`, continue from `<out>/last.pt`. Returns the run's figures.

    `resume="auto"` continues a run found in `<out>` and starts one otherwise. `last.pt` is
    rewritten every `checkpoint_every` steps and every `checkpoint_every_s` seconds of training.
    `stop_after_epochs` ends this session after that many epochs without changing the schedule
    (what a killed run looks like to `--resume`; also for splitting a long run into sessions).
    """

    cfg = config.validate()
    if not cfg.data:
        raise ValueError("data: give a dataset folder (--data DIR)")
    t_start = time.perf_counter()
    device = resolve_device(cfg)
    rank, world = init_distributed(device)
    run_dir = cfg.out_dir
    if resume is True and not (run_dir / LAST).is_file():
        run_config_path(run_dir)  # raises: nothing to resume (before the dataset is read)
    data = run_data(cfg, progress and rank == 0)
    resume_state = load_resume_state(run_dir, cfg, data.signature, resume) if resume else None
    if rank == 0 and resume_state is None and (run_dir / LAST).exists():
        raise FileExistsError(f"{run_dir}: holds a run already (last.pt); pass --resume or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    recorder = RunRecorder(run_dir, {"init": cfg.init, "strategy": cfg.strategy}) if rank == 0 else None

    if progress and rank == 0:
        print(f"building {cfg.model or 'the model'}" + (f" from {cfg.checkpoint}" if cfg.init == "pretrained" else
                                                       " (random init)"), flush=True)
    sam, arch, base_path, base_sha = build_base(cfg, run_dir)
    cfg, arch = frame_as_trained(cfg, sam, arch)
    torch.manual_seed(cfg.seed)  # a refiner's initial weights
    arch, preflight = plan_refiner(cfg, sam, arch, data.all_train)
    hint = replay_hint(cfg, arch)
    arch = arch.replace(extra={**arch.extra, "trained_on": trained_on(cfg, arch)})
    image_size = arch.image_size
    if cfg.efficient_attention:
        use_efficient_attention(sam)
    torch.manual_seed(cfg.seed)  # LoRA init and dropout
    strategy = apply_strategy(sam, cfg)
    if cfg.grad_checkpointing:
        enable_gradient_checkpointing(sam)
    sam.to(device)

    cache = EmbeddingCache(sam.image_encoder, cfg.cache_dir) if cfg.strategy == "decoder" else None
    augmenter = Augmenter(cfg.augment, cfg.seed) if cfg.augment.enabled and cfg.strategy != "decoder" else None
    module = LossModule(sam, cfg.loss)
    if world > 1:
        module = torch.nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)
    validate = make_validator(cfg, data.val, device, rank, world, progress)
    trainer = Trainer(cfg, strategy, data.train, data.val, image_size, device, augmenter, cache, validate,
                      rank, world, module, data.replay)
    trainer.data_signature = data.signature
    if resume_state is not None:
        trainer.load_state_dict(resume_state)

    meta = adapter_meta(cfg, arch, base_path, base_sha, strategy)
    reset_peak_memory(device)
    if recorder:
        recorder.config(cfg.to_yaml())
        est = estimate_memory_gib(sam, strategy, cfg, image_size, device, len(data.all_train))
        parts = ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in est.items() if k != "total")
        total = sum(p.numel() for n, p in sam.named_parameters() if ".lora_" not in n)
        replayed = (f" + {len(data.replay)} replayed from {cfg.replay_source[0]} ({cfg.replay_source[1]:.0%} of each "
                    f"batch)" if data.replay is not None else "")
        trainer_amp = resolved_amp(cfg.amp, device)
        msg = (f"{cfg.strategy} ({cfg.init} init, recipe {cfg.recipe}: {cfg.framing.describe()}, loss {cfg.loss}) "
               f"on {arch.variant}@{image_size}: {strategy.trainable_params:,} "
               f"trainable params ({strategy.trainable_params / total:.1%} of the model's {total:,}); train "
               f"{len(data.train)}{replayed} / val {len(data.val)} images; memory estimate "
               f"{est['total']:.2f} GiB peak {'resident' if device.type == 'cpu' else 'on the GPU'} ({parts}); "
               f"autocast {trainer_amp} (amp {cfg.amp})")
        recorder.status("setup", msg, {"memory_estimate_gib": est, "device": str(device), "world": world,
                                       "autocast": trainer_amp,
                                       "resumed_from_epoch": trainer.epoch if resume_state else None,
                                       "resumed_from_step": trainer.step if resume_state else None})
        recorder.status("preflight", preflight_message(preflight), preflight)
        if hint:
            recorder.status("preflight", hint)
        if progress:
            print(msg)
            print(preflight_message(preflight))
            if hint:
                print(hint)
            if resume_state is not None:
                print(_resume_message(trainer, run_dir))
        if cfg.strategy == "decoder" and cfg.augment.enabled:
            recorder.status("setup", "decoder strategy: image augmentation off (cached embeddings); prompts still re-drawn")
    policy = CheckpointPolicy(checkpoint_every, checkpoint_every_s)
    adapter_bytes = _drive(trainer, recorder, run_dir, meta, cfg, progress and rank == 0, stop_after_epochs, policy)
    if world > 1:
        torch.distributed.barrier()
    hist = trainer.history
    best_row = (trainer.rule.best(hist) or hist[0]) if hist else {}
    start = trainer.start_row or {}
    result = FinetuneResult(
        run_dir=str(run_dir), strategy=cfg.strategy, init=cfg.init,
        best_miou=float(best_row.get("val_miou", float("nan"))), best_dice=float(best_row.get("val_dice", float("nan"))),
        start_miou=float(start.get("val_miou", float("nan"))), kept_start=trainer.kept_start and trainer.finished,
        best_epoch=int(best_row.get("epoch", 0)),
        trainable_params=strategy.trainable_params,
        images_per_s=float(np.nanmean([r["img_s"] for r in hist])) if hist else float("nan"),
        peak_mem_gib=max((r["mem_gib"] for r in hist), default=float("nan")),
        wall_s=time.perf_counter() - t_start, adapter_bytes=adapter_bytes,
        epochs=trainer.epoch, steps=trainer.step, history=hist, class_groups=data.class_groups,
        rule=trainer.rule.description)
    groups = groups_message(result)
    if groups and progress:
        print(groups)
    if recorder:  # "done" stays the stream's last line: readers take the outcome from it
        if groups:
            recorder.status("classes", groups)
        recorder.status("done", outcome_message(result) + f"; adapter {adapter_bytes / 2**20:.2f} MiB",
                        {k: v for k, v in result.to_dict().items() if k != "history"})
    return result


def groups_message(result: FinetuneResult) -> str | None:
    """With --replay: the new data's classes and the replayed ones side by side, start against best (the
    mean of their class mIoUs), so forgetting shows next to the gain."""
    if not result.class_groups.get("replayed") or len(result.history) < 2:
        return None
    rows = {row["epoch"]: row["per_class"] for row in result.history}
    compared, what = result.best_epoch, "best epoch"
    if result.kept_start:  # show what training did do: the best trained epoch, so the trade is visible
        compared = _best_trained_epoch(result.history)
        what = f"best trained epoch ({compared}; not kept)"
    start, best = rows.get(0, {}), rows.get(compared, {})

    parts = []
    for label, names in (("new classes", result.class_groups["new"]), ("replayed classes", result.class_groups["replayed"])):
        a, b = group_mean(start, names), group_mean(best, names)
        parts.append(f"{label} ({', '.join(names)}) {a:.4f} -> {b:.4f} ({b - a:+.4f})")
    return f"mean class mIoU, start -> {what}: " + "; ".join(parts)


def _validated(history: list[dict]) -> list[dict]:
    """The trained epochs that were validated (the others record NaN)."""
    return [r for r in history[1:] if r.get("val_miou") == r.get("val_miou") and r.get("val_miou") is not None]


def _best_trained(history: list[dict]) -> float:
    """The best validated score of a trained epoch."""
    return max((r["val_miou"] for r in _validated(history)), default=float("nan"))


def _best_trained_epoch(history: list[dict]) -> int | None:
    rows = _validated(history)
    return max(rows, key=lambda r: r["val_miou"])["epoch"] if rows else None


def outcome_message(result: FinetuneResult) -> str:
    """How the run ended against its start: the line a user must not miss when no epoch beat it."""
    replayed = bool(result.class_groups.get("replayed"))
    if result.kept_start:
        against = (f"on the {result.rule}" if replayed else
                   f"(val mIoU {result.start_miou:.4f} before training, best epoch {_best_trained(result.history):.4f})")
        return (f"NO GAIN: no epoch beat the starting model {against}; best "
                f"and adapter/ hold the START's weights, so merging gives back the model you started from")
    if replayed:
        return (f"best epoch {result.best_epoch} by the {result.rule} (val mIoU over all objects "
                f"{result.best_miou:.4f}, the start's {result.start_miou:.4f})")
    gain = "" if result.start_miou != result.start_miou else (
        f" ({result.best_miou - result.start_miou:+.4f} over the start's {result.start_miou:.4f})")
    return f"best val mIoU {result.best_miou:.4f} at epoch {result.best_epoch}{gain}"


def _resume_message(trainer, run_dir: Path) -> str:
    if trainer.finished:
        how = "stopped early (--patience)" if trainer.stopped_early else "complete"
        return (f"nothing to resume: the run in {run_dir} is {how} ({trainer.epoch} epochs, {trainer.step} steps); "
                f"to train longer, resume with a larger --epochs")
    where = f", {trainer.batches_done} batches into it" if trainer.batches_done else ""
    return f"resuming {run_dir} at step {trainer.step} of {trainer.total_steps} (epoch {trainer.epoch + 1}{where})"


class CheckpointPolicy:
    """When to rewrite last.pt: every `every_steps` optimizer steps or `every_s` seconds of training."""

    def __init__(self, every_steps: int = CHECKPOINT_EVERY_STEPS, every_s: float = CHECKPOINT_EVERY_S):
        self.every_steps, self.every_s = max(1, int(every_steps)), float(every_s)
        self.saved()

    def saved(self) -> None:
        self.steps, self.since = 0, time.monotonic()

    def due_after_step(self) -> bool:
        self.steps += 1
        return self.steps >= self.every_steps or time.monotonic() - self.since >= self.every_s


def _save_last(trainer, run_dir: Path, policy: CheckpointPolicy) -> None:
    with atomic_path(run_dir / LAST) as tmp:
        torch.save(trainer.state_dict(), tmp)
    policy.saved()  # the interval counts training time, not the time the save took


def _drive(trainer, recorder, run_dir, meta, cfg, progress, stop_after_epochs=None, policy=None) -> int:
    """Consume the loop's events: progress bar, status lines, metrics, checkpoints, adapter."""
    policy = policy or CheckpointPolicy()
    bar = None
    if progress:
        bar = tqdm(total=trainer.total_steps, initial=trainer.step, desc=f"finetune {cfg.strategy}", unit="step")
    say = bar.write if bar is not None else (lambda message: None)
    size = adapter_bytes(run_dir)
    epochs_done = 0
    for event in trainer.run():
        state, f = event["state"], event.get("figures", {})
        epochs_done += state == "epoch"
        if bar is not None and state == "step":
            bar.update(1)
            bar.set_postfix(loss=f"{f['loss']:.4f}", lr=f"{f['lr']:.2e}", img_s=f"{f['img_s']:.1f}",
                            mem=f"{f['mem_gib']:.2f}G")
        if state == "validating":
            say(f"epoch {f['epoch'] + 1}: validating on {f['val_images']} images" if f["epoch"] >= 0 else
                f"scoring the starting model on {f['val_images']} validation images (epoch 0)")
        if recorder is None or state == "done":  # finetune records the run's outcome itself
            continue
        recorder.status(state, event.get("message", ""), f)
        if (state == "step" and policy.due_after_step()) or state == "validating":
            _save_last(trainer, run_dir, policy)
        if state == "epoch" and not event["validated"]:  # an epoch between validations
            recorder.metrics(trainer.history)
            say(f"epoch {f['epoch']}: trained (validation every {cfg.val_every} epochs)")
            _save_last(trainer, run_dir, policy)
        elif state in ("epoch", "start_scored"):
            recorder.metrics(trainer.history)
            if event["improved"] or size == 0:
                size = _write_best(trainer, run_dir, meta, f)
            say(_epoch_line(f, event["improved"], state == "start_scored", trainer.rule))
            _save_last(trainer, run_dir, policy)
        if stop_after_epochs is not None and epochs_done >= stop_after_epochs and state == "epoch":
            break
    if bar is not None:
        bar.close()
    return size


def _write_best(trainer, run_dir: Path, meta: dict, row: dict) -> int:
    """best.pt and the adapter folder from the weights as they are now (the best so far)."""

    tensors = trainer.strategy.trainable_state()
    with atomic_path(run_dir / BEST) as tmp:
        torch.save({"trainable": tensors, "epoch": row["epoch"], "val_miou": row["val_miou"]}, tmp)
    return write_adapter(run_dir, tensors, {**meta, "epoch": row["epoch"], "val_miou": row["val_miou"],
                                            "val_dice": row["val_dice"]})


def _epoch_line(row: dict, improved: bool, start: bool, rule) -> str:
    """The epoch's val mIoU; with replay also the score epochs are ranked by (and when one is barred)."""
    ranked = "" if rule.groups is None else f", score {rule.score(row):.4f}"
    if start:
        against = "it" if rule.groups is None else f"its score ({rule.description})"
        return (f"epoch 0 (the starting model, before any step): val mIoU {row['val_miou']:.4f}{ranked}; "
                f"epochs must beat {against}")
    return f"epoch {row['epoch']}: val mIoU {row['val_miou']:.4f}{ranked}" + (" (best)" if improved else "")


def make_validator(cfg, val_ds, device, rank, world, progress: bool = False):
    """Box-prompted val mIoU/Dice (rank 0 computes; the figure is broadcast so ranks agree)."""
    plan = build_plan(val_ds, "box", cfg.seed, max_images=cfg.val_max_images) if rank == 0 else None

    def validate(sam):
        figures = torch.full((2,), float("nan"), dtype=torch.float64)
        per_class = {}
        if rank == 0:
            report = evaluate(model_adapter(sam, str(device)), plan, "validation", boundary=False, progress=progress)
            o = report.overall
            figures = torch.tensor([o["miou"] or 0.0, o["dice"] or 0.0], dtype=torch.float64)
            per_class = {k: v["miou"] for k, v in report.by("class_name").items()}
        if world > 1:
            figures = figures.to(device)
            torch.distributed.broadcast(figures, 0)
        return {"miou": float(figures[0]), "dice": float(figures[1]), "per_class": per_class}

    return validate


def adapter_meta(cfg, arch, base_path, base_sha, strategy) -> dict:
    return {"strategy": cfg.strategy, "init": cfg.init, "decoder_mode": cfg.decoder_mode,
            "partial_blocks": cfg.partial_blocks, "lora": lora_settings(cfg), "arch": arch.to_dict(),
            "base_checkpoint": str(base_path), "base_sha256": base_sha,
            "trainable_params": strategy.trainable_params}
