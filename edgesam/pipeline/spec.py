"""The pipeline spec: one YAML file that drives every stage (`edgesam pipeline -c pipeline.yaml`).

Stage sections (`finetune`, `prune`, `export`, `bench`) hold overrides of that stage's own config
dataclass, so each stage's options are documented and validated in one place: its config.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgesam.utils.config import Config, ConfigError


@dataclass
class SynthSpec(Config):
    count: int = 60  # images per defect class in the built-in synthetic dataset
    size: int = 256
    free: int = 16  # defect-free images (negatives, calibration)
    seed: int = 0


@dataclass
class PipelineSpec(Config):
    out: str = "runs/pipeline"
    model: str = "vit_t"
    checkpoint: str | None = None  # None: train from random init (labelled as such everywhere)
    image_size: int | None = None  # None: the variant's / checkpoint's size
    data: str | None = None  # None: generate the built-in synthetic inspection dataset
    synth: SynthSpec = field(default_factory=SynthSpec)
    val_fraction: float = 0.2
    seed: int = 0
    finetune: dict = field(default_factory=dict)  # FinetuneConfig overrides
    prune: dict | None = field(default_factory=dict)  # PruneConfig overrides; None skips pruning
    recover_epochs: int = 2
    measure_latency: bool = True  # prune / distill: ONNX Runtime encoder latency against the bigger model
    distill: dict | None = None  # DistillConfig overrides (e.g. {student: vit_n}); None skips distillation
    export: dict = field(default_factory=lambda: {"precisions": ["fp32", "int8"]})  # ExportConfig overrides
    bench: dict = field(default_factory=dict)  # bench options (max_images, prompt)
    min_iou: float | None = None  # floors: the pipeline fails when a format misses them
    max_latency_ms: float | None = None

    def __post_init__(self):
        if isinstance(self.synth, dict):
            self.synth = SynthSpec.from_dict(self.synth, "synth")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction: expected a fraction in (0, 1), got {self.val_fraction}")
        for name in ("finetune", "export", "bench"):
            if not isinstance(getattr(self, name), dict):
                raise ConfigError(f"{name}: expected a mapping of option overrides, got {type(getattr(self, name)).__name__}")
        if self.distill is not None:
            if not isinstance(self.distill, dict):
                raise ConfigError(f"distill: expected a mapping of option overrides, got {type(self.distill).__name__}")
            if self.prune is not None:  # both would replace the merged model's encoder
                raise ConfigError("distill: set prune: null as well; a distilled student replaces the merged model's "
                                 "encoder (pruning and distillation are alternatives in the pipeline)")

    @property
    def out_dir(self) -> Path:
        return Path(self.out)

    def paths(self) -> dict[str, Path]:
        """Where each stage reads and writes, under `out` (the data where the spec names a folder)."""
        out = self.out_dir
        return {
            "data": Path(self.data) if self.data else out / "data",
            "finetune": out / "finetune",
            "merged": out / "merged.pth",
            "pruned": out / "pruned.pth",
            "prune_run": out / "prune",
            "student": out / "student.pth",
            "distill_run": out / "distill",
            "distill_cache": out / "distill_cache",
            "bundle": out / "bundle",
            "bench": out / "bench",
            "report": out / "report.md",
        }

    def final_checkpoint(self) -> Path:
        """The model export and bench take: the distilled student, the pruned model, or the merged one."""
        paths = self.paths()
        if self.distill is not None:
            return paths["student"]
        return paths["pruned"] if self.prune is not None else paths["merged"]
