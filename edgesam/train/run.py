"""`finetune(config)`: build the model and data, run the loop, record everything in the run dir."""
from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgesam.train.config import FinetuneConfig

LAST, BEST, BASE = "last.pt", "best.pt", "base.pth"


@dataclass
class FinetuneResult:
    run_dir: str
    strategy: str
    init: str
    best_miou: float
    best_dice: float
    trainable_params: int
    images_per_s: float
    peak_mem_gib: float
    wall_s: float
    adapter_bytes: int
    epochs: int
    steps: int
    history: list = field(default_factory=list)

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
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return dist.get_rank(), world


def build_base(cfg, run_dir: Path):
    """(sam, arch, base_path, base_sha256). Random init writes its initial weights as the base.

    The returned arch (and `sam.framing`) record the input framing this run trains, whatever the base
    file records: the trained model is used the way it was trained.
    """
    from edgesam.models import arch_for, build_sam, load_model, save_checkpoint
    from edgesam.roi import with_framing
    from edgesam.utils.files import sha256_file

    if cfg.init == "random":
        torch.manual_seed(cfg.seed)
        arch = arch_for(cfg.model, cfg.image_size)
        arch = with_framing(arch.replace(extra={**arch.extra, "init": "random"}), cfg.framing)
        sam = build_sam(arch)
        base = run_dir / BASE
        if not base.exists():
            save_checkpoint(sam, base, arch)
        else:  # resumed run: the recorded base is the truth
            sam, arch = load_model(None, base)
    else:
        sam, arch = load_model(cfg.model, cfg.checkpoint, cfg.image_size)
        arch = with_framing(arch, cfg.framing)
        sam.framing = cfg.framing
        base = Path(cfg.checkpoint)
    return sam, arch, base.resolve(), sha256_file(base)


def enable_gradient_checkpointing(sam) -> None:
    """Recompute each encoder block in the backward pass instead of storing its activations."""
    from torch.utils.checkpoint import checkpoint

    for block in sam.image_encoder.blocks:
        inner = block.forward
        block.forward = lambda x, _f=inner: checkpoint(_f, x, use_reentrant=False) if torch.is_grad_enabled() else _f(x)


def estimate_memory_gib(sam, strategy, cfg, image_size: int) -> dict:
    """Rough training-memory estimate (weights, grads + AdamW states, activations) in GiB.

    Activations per encoder block follow Korthikanti et al. (2022): ~34*s*h bytes in 16-bit plus
    5*heads*s_att^2 for stored attention maps, which the efficient attention does not keep.
    """
    enc = sam.image_encoder
    bytes_act = 2 if (cfg.amp in ("bf16", "fp16") or (cfg.amp == "auto" and torch.cuda.is_available())) else 4
    total = sum(p.numel() for p in sam.parameters())
    trainable = strategy.trainable_params
    s = (image_size // 16) ** 2
    h = enc.patch_embed.proj.out_channels
    act = 0.0
    if cfg.strategy != "decoder":
        n_blocks = cfg.partial_blocks if cfg.strategy == "partial" else len(enc.blocks)
        for blk in list(enc.blocks)[len(enc.blocks) - n_blocks:]:
            s_att = s if blk.window_size == 0 else blk.window_size ** 2
            n_win = 1 if blk.window_size == 0 else math.ceil(s / s_att)
            per = 34 * s * h * bytes_act / 2
            if not cfg.efficient_attention:
                per += 5 * blk.attn.num_heads * s_att ** 2 * n_win * bytes_act / 2
            act += per if not cfg.grad_checkpointing else s * h * bytes_act
    act *= cfg.batch_size
    gib = 2 ** 30
    est = {"weights": total * 4 / gib, "grads_and_adamw": trainable * 4 * 3 / gib, "activations": act / gib}
    est["total"] = sum(est.values())
    return est


# ---------------------------------------------------------------------------- finetune
def finetune(config: FinetuneConfig, progress: bool = True, resume: bool = False,
             stop_after_epochs: int | None = None) -> FinetuneResult:
    """Train per `config`; with `resume`, continue from `<out>/last.pt`. Returns the run's figures.

    `stop_after_epochs` ends this session after that many epochs without changing the schedule
    (what a killed run looks like to `--resume`; also for splitting a long run into sessions).
    """
    from edgesam.data import Augmenter, load_dataset, split_by_stem
    from edgesam.models.attention import use_efficient_attention
    from edgesam.train.cache import EmbeddingCache
    from edgesam.train.loop import LossModule, Trainer
    from edgesam.train.record import RunRecorder
    from edgesam.train.strategies import apply_strategy

    cfg = config.validate()
    if not cfg.data:
        raise ValueError("data: give a dataset folder (--data DIR)")
    t_start = time.perf_counter()
    device = resolve_device(cfg)
    rank, world = init_distributed(device)
    run_dir = cfg.out_dir
    if rank == 0 and not resume and (run_dir / LAST).exists():
        raise FileExistsError(f"{run_dir}: holds a run already (last.pt); pass --resume or choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    recorder = RunRecorder(run_dir, {"init": cfg.init, "strategy": cfg.strategy}) if rank == 0 else None

    dataset = load_dataset(cfg.data, min_area=cfg.min_area)
    labelled = dataset.subset([i for i, r in enumerate(dataset.records) if r.labelled])
    if len(labelled) < 2:
        raise ValueError(f"{cfg.data}: found {len(labelled)} labelled images; need at least 2 (train + val)")
    train_ds, val_ds = split_by_stem(labelled, cfg.val_fraction, cfg.split_seed)

    sam, arch, base_path, base_sha = build_base(cfg, run_dir)
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
    validate = make_validator(cfg, val_ds, device, rank, world)
    trainer = Trainer(cfg, strategy, train_ds, val_ds, image_size, device, augmenter, cache, validate,
                      rank, world, module)
    if resume:
        trainer.load_state_dict(torch.load(run_dir / LAST, map_location="cpu", weights_only=True))

    meta = adapter_meta(cfg, arch, base_path, base_sha, strategy)
    if recorder:
        recorder.config(cfg.to_yaml())
        est = estimate_memory_gib(sam, strategy, cfg, image_size)
        msg = (f"{cfg.strategy} ({cfg.init} init, recipe {cfg.recipe}: {cfg.framing.describe()}, loss {cfg.loss}) "
               f"on {arch.variant}@{image_size}: {strategy.trainable_params:,} "
               f"trainable params; train {len(train_ds)} / val {len(val_ds)} images; memory estimate "
               f"{est['total']:.2f} GiB (weights {est['weights']:.2f}, grads+AdamW {est['grads_and_adamw']:.2f}, "
               f"activations {est['activations']:.2f})")
        recorder.status("setup", msg, {"memory_estimate_gib": est, "device": str(device), "world": world,
                                       "resumed_from_epoch": trainer.epoch if resume else None})
        if progress:
            print(msg)
        if cfg.strategy == "decoder" and cfg.augment.enabled:
            recorder.status("setup", "decoder strategy: image augmentation off (cached embeddings); prompts still re-drawn")
    adapter_bytes = _drive(trainer, recorder, run_dir, meta, cfg, progress and rank == 0, stop_after_epochs)
    if world > 1:
        torch.distributed.barrier()
    hist = trainer.history
    best_row = max(hist, key=lambda r: r["val_miou"] if r["val_miou"] == r["val_miou"] else -1) if hist else {}
    result = FinetuneResult(
        run_dir=str(run_dir), strategy=cfg.strategy, init=cfg.init,
        best_miou=float(best_row.get("val_miou", float("nan"))), best_dice=float(best_row.get("val_dice", float("nan"))),
        trainable_params=strategy.trainable_params,
        images_per_s=float(np.nanmean([r["img_s"] for r in hist])) if hist else float("nan"),
        peak_mem_gib=max((r["mem_gib"] for r in hist), default=float("nan")),
        wall_s=time.perf_counter() - t_start, adapter_bytes=adapter_bytes,
        epochs=trainer.epoch, steps=trainer.step, history=hist)
    if recorder:
        recorder.status("done", f"best val mIoU {result.best_miou:.4f}; adapter {adapter_bytes / 2**20:.2f} MiB",
                        {k: v for k, v in result.to_dict().items() if k != "history"})
    return result


def _drive(trainer, recorder, run_dir, meta, cfg, progress, stop_after_epochs=None) -> int:
    """Consume the loop's events: progress bar, status lines, metrics, checkpoints, adapter."""
    from edgesam.train.adapter import ADAPTER_DIR, WEIGHTS, write_adapter
    from edgesam.utils.files import atomic_path

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=trainer.total_steps, initial=trainer.step, desc=f"finetune {cfg.strategy}", unit="step")
    size = (run_dir / ADAPTER_DIR / WEIGHTS).stat().st_size if (run_dir / ADAPTER_DIR / WEIGHTS).exists() else 0
    epochs_done = 0
    for event in trainer.run():
        if event["state"] == "epoch":
            epochs_done += 1
        f = event.get("figures", {})
        if bar is not None and event["state"] == "step":
            bar.update(1)
            bar.set_postfix(loss=f"{f['loss']:.4f}", lr=f"{f['lr']:.2e}", img_s=f"{f['img_s']:.1f}",
                            mem=f"{f['mem_gib']:.2f}G")
        if recorder is None:
            continue
        recorder.status(event["state"], event.get("message", ""), f)
        if event["state"] == "epoch":
            recorder.metrics(trainer.history)
            if event["improved"] or size == 0:
                tensors = trainer.strategy.trainable_state()
                with atomic_path(run_dir / BEST) as tmp:
                    torch.save({"trainable": tensors, "epoch": f["epoch"], "val_miou": f["val_miou"]}, tmp)
                size = write_adapter(run_dir, tensors, {**meta, "epoch": f["epoch"], "val_miou": f["val_miou"]})
                if bar is not None:
                    bar.write(f"epoch {f['epoch']}: val mIoU {f['val_miou']:.4f} (best); adapter "
                              f"{size / 2**20:.2f} MiB at {run_dir / ADAPTER_DIR}")
            elif bar is not None:
                bar.write(f"epoch {f['epoch']}: val mIoU {f['val_miou']:.4f}")
            with atomic_path(run_dir / LAST) as tmp:
                torch.save(trainer.state_dict(), tmp)
        if stop_after_epochs is not None and epochs_done >= stop_after_epochs and event["state"] == "epoch":
            break
    if bar is not None:
        bar.close()
    return size


def make_validator(cfg, val_ds, device, rank, world):
    """Box-prompted val mIoU/Dice (rank 0 computes; the figure is broadcast so ranks agree)."""
    from edgesam.evaluate import evaluate

    def validate(sam):
        figures = torch.full((2,), float("nan"), dtype=torch.float64)
        per_class = {}
        if rank == 0:
            report = evaluate(sam, val_ds, "box", cfg.seed, boundary=False, max_images=cfg.val_max_images,
                              device=str(device))
            o = report.overall
            figures = torch.tensor([o["miou"] or 0.0, o["dice"] or 0.0], dtype=torch.float64)
            per_class = {k: v["miou"] for k, v in report.by("class_name").items()}
        if world > 1:
            figures = figures.to(device)
            torch.distributed.broadcast(figures, 0)
        return {"miou": float(figures[0]), "dice": float(figures[1]), "per_class": per_class}

    return validate


def adapter_meta(cfg, arch, base_path, base_sha, strategy) -> dict:
    from edgesam.train.strategies import lora_target_pattern

    pattern = lora_target_pattern(cfg)
    lora = None if pattern is None else {"rank": cfg.lora_rank, "alpha": cfg.lora_alpha,
                                          "dropout": cfg.lora_dropout, "target_modules": pattern}
    return {"strategy": cfg.strategy, "init": cfg.init, "decoder_mode": cfg.decoder_mode,
            "partial_blocks": cfg.partial_blocks, "lora": lora, "arch": arch.to_dict(),
            "base_checkpoint": str(base_path), "base_sha256": base_sha,
            "trainable_params": strategy.trainable_params}
