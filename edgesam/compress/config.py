"""Configs of the compression stage (what to prune, how to recover, the whole job of `edgesam prune` from a
YAML spec and flags): they validate themselves and round-trip to plain dicts (YAML/JSON)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgesam.utils.config import Config, ConfigError, check_choice, check_integer, check_number

IMPORTANCE = ("magnitude", "taylor")
SCOPES = ("global", "per_block")


def _fraction(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{name}: expected a fraction in [0, 1), got {value!r}")
    return float(value)


@dataclass
class PruneConfig(Config):
    """What to remove from the image encoder and how to rank it.

    `ratio` is the default fraction of attention heads and of MLP hidden channels to remove;
    `head_ratio` / `mlp_ratio` override it per kind. `scope="per_block"` removes that fraction
    from every block; `"global"` ranks all blocks together (scores normalised per block) so weak
    blocks lose more, keeping at least one head and `channel_multiple` channels per block.
    `remove_blocks` drops whole encoder blocks (original indices) before heads and channels.
    """

    ratio: float = 0.0
    head_ratio: float | None = None
    mlp_ratio: float | None = None
    importance: str = "magnitude"
    scope: str = "per_block"
    remove_blocks: tuple[int, ...] = ()
    calib_batches: int = 4  # calibration batches for the taylor score
    calib_batch_size: int = 2
    taylor_probes: int = 2  # random output projections per batch (see importance.taylor_scores)
    channel_multiple: int = 8  # MLP widths are kept at multiples of this (GEMM-friendly)
    seed: int = 0

    WHERE = "prune config"

    def __post_init__(self):
        self.ratio = _fraction("ratio", self.ratio)
        if self.head_ratio is not None:
            self.head_ratio = _fraction("head_ratio", self.head_ratio)
        if self.mlp_ratio is not None:
            self.mlp_ratio = _fraction("mlp_ratio", self.mlp_ratio)
        check_choice("importance", self.importance, IMPORTANCE)
        check_choice("scope", self.scope, SCOPES)
        blocks = tuple(self.remove_blocks or ())
        if any(not isinstance(b, int) or b < 0 for b in blocks) or len(set(blocks)) != len(blocks):
            raise ConfigError(f"remove_blocks: expected distinct block indices >= 0, got {list(blocks)}")
        self.remove_blocks = tuple(sorted(blocks))
        for name in ("calib_batches", "calib_batch_size", "taylor_probes", "channel_multiple"):
            check_integer(name, getattr(self, name), 1)
        check_integer("seed", self.seed, 0)

    @property
    def heads_fraction(self) -> float:
        return self.ratio if self.head_ratio is None else self.head_ratio

    @property
    def mlp_fraction(self) -> float:
        return self.ratio if self.mlp_ratio is None else self.mlp_ratio


@dataclass
class RecoveryConfig(Config):
    """Recovery fine-tuning of a pruned encoder by distillation from the unpruned teacher.

    loss = embed_weight * MSE(student embedding, teacher embedding)
         + mask_weight * segmentation_loss(student masks, teacher's binarised masks)
    The decoder is shared and frozen, so the student learns to give the decoder what the teacher gave.
    """

    epochs: int = 1
    max_steps: int | None = None  # stop early (tests, quick runs)
    lr: float = 1e-4
    weight_decay: float = 0.01
    embed_weight: float = 1.0
    # Off by default: measured on the demo's trained ROI model (34 % heads + 50 % MLP pruned, one epoch),
    # mask IoU vs unpruned went 0.90 -> 0.93 with the embedding term alone, but down to 0.85 with the
    # focal + Dice mask term (0.84 at weight 0.1, 0.79 with soft BCE on the teacher's probabilities):
    # gradients through the frozen decoder fit the training crops, not the teacher.
    mask_weight: float = 0.0
    max_objects: int = 4  # box prompts per image in the mask loss
    box_jitter: float = 0.1
    augment: bool = False
    eval_images: int = 8  # fixed images on which the distillation loss is reported before and after
    seed: int = 0
    progress: bool = True
    extra: dict = field(default_factory=dict)

    WHERE = "recovery config"

    def __post_init__(self):
        check_integer("epochs", self.epochs, 1)
        if self.max_steps is not None:
            check_integer("max_steps", self.max_steps, 1)
        for name in ("lr", "embed_weight", "mask_weight", "box_jitter", "weight_decay"):
            check_number(name, getattr(self, name), low=0.0)
        check_integer("max_objects", self.max_objects, 1)
        check_integer("eval_images", self.eval_images, 1)


@dataclass
class PruneJob(Config):
    """Everything `edgesam prune` needs; YAML sections `prune:` and `recover:` fill the two configs."""

    out: Path
    checkpoint: Path | None = None
    model: str | None = None
    image_size: int | None = None
    prune: PruneConfig = field(default_factory=PruneConfig)
    recovery: RecoveryConfig | None = None  # None: no recovery fine-tuning
    recover_data: Path | None = None
    calib_data: Path | None = None
    eval_data: Path | None = None  # accuracy set; default: the validation split of recover_data
    val_fraction: float = 0.2
    eval_max_images: int | None = None
    latency_runs: int = 3  # 0 skips the ONNX Runtime measurement
    run_dir: Path | None = None

    def __post_init__(self):
        self.out = Path(self.out)
        if self.run_dir is None:
            self.run_dir = self.out.parent / f"{self.out.stem}_prune_run"
        if self.recovery is not None and self.recover_data is None:
            raise ConfigError("recover_data: recovery needs data: pass --recover-data DIR")
        check_integer("latency_runs", self.latency_runs, 0)


PRUNE_FLAGS = {"ratio": "ratio", "head_ratio": "head_ratio", "mlp_ratio": "mlp_ratio", "importance": "importance",
               "scope": "scope", "remove_blocks": "remove_blocks", "seed": "seed"}
RECOVER_FLAGS = {"recover_epochs": "epochs", "recover_steps": "max_steps", "lr": "lr", "seed": "seed"}
JOB_KEYS = ("checkpoint", "model", "image_size", "calib_data", "out", "recover_data", "eval_data",
            "eval_max_images", "latency_runs", "run_dir")


def default_config() -> dict:
    """What `edgesam prune --print-config` prints."""
    return {"checkpoint": None, "model": None, "out": "pruned.pth", "prune": PruneConfig(ratio=0.5).to_dict(),
            "recover": None, "recover_data": None, "calib_data": None, "eval_data": None, "latency_runs": 3}


def build_job(base: dict, flags: dict) -> PruneJob:
    """The job of `edgesam prune`: a YAML spec's sections (`prune:`, `recover:`, job keys) with the flags over them."""
    base = dict(base)
    prune = dict(base.pop("prune", None) or {})
    recover = base.pop("recover", None)
    recover = dict(recover) if isinstance(recover, dict) else ({} if recover else None)
    unknown = set(base) - set(JOB_KEYS)
    if unknown:
        raise ConfigError(f"config: unknown keys {sorted(unknown)}; expected prune, recover or {list(JOB_KEYS)}")
    for flag, key in PRUNE_FLAGS.items():
        if flags.get(flag) is not None:
            prune[key] = flags[flag]
    # --recover-data alone enables recovery; --eval-data only measures.
    wants = any(flags.get(k) is not None for k in ("recover_epochs", "recover_steps", "recover_data"))
    if wants or (base.get("recover_data") and recover is None):
        recover = recover if recover is not None else {}
    if recover is not None:
        for flag, key in RECOVER_FLAGS.items():
            if flags.get(flag) is not None:
                recover[key] = flags[flag]
    job = {k: v for k, v in base.items()}
    job.update({k: flags[k] for k in JOB_KEYS if flags.get(k) is not None})
    if not job.get("out"):
        raise ConfigError("--out: give the path of the pruned checkpoint to write")
    if not job.get("checkpoint") and not job.get("model"):
        raise ConfigError("--checkpoint or --model: give the model to prune")
    for key in ("checkpoint", "calib_data", "recover_data", "eval_data", "run_dir", "out"):
        if job.get(key) is not None:
            job[key] = Path(job[key])
    return PruneJob(prune=PruneConfig.from_dict(prune), recovery=RecoveryConfig.from_dict(recover) if recover is not None else None,
                    **job)
