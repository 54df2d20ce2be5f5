"""`DistillConfig`: every knob of `edgesam distill`, validated, and round-tripped through YAML."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgesam.data import AugmentConfig
from edgesam.train.config import AMP_MODES
from edgesam.utils.config import Config, ConfigError, check_choice, check_integer, check_number

LOSSES = ("mse", "mse+cos")
TEACHER_BACKENDS = ("auto", "torch", "onnx", "openvino", "openvino_bf16")


@dataclass
class DistillConfig(Config):
    HINT = "see `edgesam distill --print-config`"

    # what
    teacher: str | None = None  # checkpoint of the fine-tuned (merged) model
    student: str = "vit_n"  # registered variant of the student encoder
    images: str | None = None  # dataset folder (any layout, unlabelled class folders included) or a flat image folder
    image_size: int | None = None  # None: the teacher's; teacher and student both run at this size
    out: str = "student.pth"
    run_dir: str | None = None  # None: <out without suffix>_distill/ beside out
    cache_dir: str | None = None  # teacher embeddings; None: <run_dir>/teacher_cache (share it between runs)
    # teacher embeddings
    # auto: the fastest the machine has (edgesam.distill.models.teacher_backend); torch: PyTorch eager;
    # onnx / openvino / openvino_bf16: the teacher's exported ONNX encoder on ONNX Runtime / OpenVINO fp32 / bf16
    teacher_backend: str = "auto"
    views_per_image: int = 4  # cached inputs per image: view 0 as at inference, the rest augmented
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # applied alike to teacher and student inputs
    box_side: tuple[float, float] = (0.02, 0.5)  # random boxes (ROI crops, prompts): side range, fraction of the short side
    # data
    val_fraction: float = 0.2  # held-out images (split by stem, as finetune splits): validation and eval
    max_images: int | None = None  # use at most this many training images (evenly spread; benchmarks)
    split_seed: int = 0  # which images are held out (finetune's --split-seed): fixed apart from `seed`
    seed: int = 0  # views, prompts, student init and order
    # stage 1: the student encoder learns the teacher's embeddings
    loss: str = "mse"  # mse | mse+cos (adds cos_weight * (1 - cosine) per embedding location)
    cos_weight: float = 1.0
    epochs: int = 8
    batch_size: int = 4
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 20
    grad_clip: float = 1.0  # 0 disables
    max_steps: int | None = None  # stop stage 1 after this many optimizer steps
    efficient_attention: bool = True
    # student training autocast: off, bf16, or auto (bf16 on CPUs with bf16 math; distill trains on the CPU):
    # bf16 kept the task figure (benchmarks/distill/README.md)
    amp: str = "auto"
    # stage 2 (optional): end to end on the teacher's masks for box prompts drawn on the images
    mask_epochs: int = 0  # 0 skips the stage
    mask_lr: float = 1e-4  # student encoder; the decoder trains at a tenth of it
    mask_prompts: int = 4  # box prompts per image per step (whole-image models; an ROI crop has its own box)
    label_prompts: bool = True  # whole-image models: put those boxes on labelled objects where labels exist
    mask_max_steps: int | None = None
    # evaluation against the teacher on the held-out images
    eval_max_images: int | None = 32
    latency_runs: int = 3  # ONNX Runtime encoder latency of teacher and student (0 skips)
    threads: int | None = None  # torch / ONNX Runtime threads; None: the libraries' default

    def __post_init__(self):
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig.from_dict(self.augment)
        self.box_side = tuple(float(v) for v in self.box_side)

    def validate(self) -> "DistillConfig":
        """Check every field; called before a run (a printed default config may leave paths empty)."""
        if not self.teacher:
            raise ConfigError("teacher: give the teacher checkpoint (--teacher merged.pth)")
        if not self.images:
            raise ConfigError("images: give the folder of line images to distil on (--images DIR)")
        check_choice("loss", self.loss, LOSSES)
        check_choice("teacher_backend", self.teacher_backend, TEACHER_BACKENDS)
        check_choice("amp", self.amp, tuple(m for m in AMP_MODES if m != "fp16"))
        for name in ("views_per_image", "epochs", "batch_size", "mask_prompts"):
            check_integer(name, getattr(self, name), 1)
        for name in ("warmup_steps", "mask_epochs", "latency_runs", "seed", "split_seed"):
            check_integer(name, getattr(self, name), 0)
        for name in ("max_steps", "mask_max_steps", "max_images", "eval_max_images", "threads"):
            if getattr(self, name) is not None:
                check_integer(name, getattr(self, name), 1)
        for name in ("cos_weight", "lr", "weight_decay", "grad_clip", "mask_lr"):
            check_number(name, getattr(self, name), low=0.0)
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction: expected a number in (0, 1), got {self.val_fraction!r}")
        if self.image_size is not None and (not isinstance(self.image_size, int) or self.image_size <= 0
                                            or self.image_size % 16):
            raise ConfigError(f"image_size: expected a positive multiple of 16, got {self.image_size!r}")
        lo, hi = self.box_side if len(self.box_side) == 2 else (-1.0, -1.0)
        if not 0.0 < lo <= hi <= 1.0:
            raise ConfigError(f"box_side: expected (min, max) with 0 < min <= max <= 1, got {list(self.box_side)}")
        return self

    # ----------------------------------------------------------------------- paths
    @property
    def out_path(self) -> Path:
        return Path(self.out)

    @property
    def run_path(self) -> Path:
        if self.run_dir:
            return Path(self.run_dir)
        return self.out_path.with_name(self.out_path.stem + "_distill")

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else self.run_path / "teacher_cache"
