"""The pipeline spec: one YAML file that drives every stage (`edgesam pipeline -c pipeline.yaml`).

Stage sections (`finetune`, `prune`, `distill`, `export`, `bench`) hold overrides of that stage's own config
dataclass, so each stage's options are documented and validated in one place: its config.

The whole spec is checked when it is made (`PipelineSpec(...)`, `PipelineSpec.from_yaml(...)`): its own fields,
and every stage's config built from it as the stage will build it (`edgesam.pipeline.configs.check_stages`). A bad
value is one ConfigError naming the file, the field (`bench.max_images`) and what was expected, before the
first stage runs: a typo in `bench` must not wait for a 7-minute finetune to be found.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from edgesam.pipeline.configs import build_section, check_stages
from edgesam.utils.config import Config, ConfigError, check_field_types, check_integer, check_number

@dataclass
class SynthSpec(Config):
    WHERE = "synth"

    count: int = 60  # images per defect class in the built-in synthetic dataset
    size: int = 256
    free: int = 16  # defect-free images (negatives, calibration)
    seed: int = 0

    def __post_init__(self):
        check_field_types(SynthSpec, vars(self))
        check_integer("count", self.count, 1)
        check_integer("size", self.size, 16)  # synthesize_dataset's smallest image
        check_integer("free", self.free, 0)
        check_integer("seed", self.seed, 0)


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
    bench: dict = field(default_factory=dict)  # BenchConfig overrides (max_images, prompt, ...)
    min_iou: float | None = None  # floors: the pipeline fails when a format misses them
    max_latency_ms: float | None = None

    def __post_init__(self):
        check_field_types(PipelineSpec, {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                                         if f.name != "synth"})
        if not self.out.strip():
            raise ConfigError("out: expected the output folder, got an empty path")
        if not isinstance(self.synth, SynthSpec):
            self.synth = build_section("synth", SynthSpec, self.synth)
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction: expected a fraction in (0, 1), got {self.val_fraction}")
        if self.image_size is not None and (self.image_size <= 0 or self.image_size % 16):
            raise ConfigError(f"image_size: expected a positive multiple of 16 (or null: the model's own), "
                              f"got {self.image_size}")
        check_integer("seed", self.seed, 0)
        check_integer("recover_epochs", self.recover_epochs, 0)
        if self.min_iou is not None:
            check_number("min_iou", self.min_iou, 0.0, 1.0)
        if self.max_latency_ms is not None and not self.max_latency_ms > 0:
            raise ConfigError(f"max_latency_ms: expected a positive number of milliseconds, got {self.max_latency_ms}")
        if self.distill is not None and self.prune is not None:  # both would replace the merged model's encoder
            raise ConfigError("distill: set prune: null as well; a distilled student replaces the merged model's "
                             "encoder (pruning and distillation are alternatives in the pipeline)")
        check_stages(self)  # every stage's config as its stage will build it: a bad section fails here, by name

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
