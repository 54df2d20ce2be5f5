"""Each stage's config, built from the pipeline spec as the stage runs with it: the pipeline's own values (paths
under `out`, the spec's seed and split) with the spec section's overrides over them, checked by the stage's config
class. `check_stages` builds them all when a spec is made, so a bad value in any section is one ConfigError naming
the spec file and `section.field` before the first stage runs.

Nothing here imports the spec module (it calls `check_stages`), so spec -> configs -> the stages' config classes
stays one way.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from edgesam.bench.config import BenchConfig
from edgesam.distill import DistillConfig
from edgesam.export import ExportConfig
from edgesam.utils.config import ConfigError, check_field_types, shown
from edgesam_runtime.fields import checked_fields

if TYPE_CHECKING:  # for annotations only: the spec module imports this one
    from edgesam.pipeline.spec import PipelineSpec


def _field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def section_message(message: str, section: str, cls, labels: dict[str, str] | None = None) -> str:
    """A config's error message ("max_images: expected ...") as the spec names it ("bench.max_images: expected
    ..."); `labels` names fields the pipeline filled from the spec's own fields (`split_seed` -> `seed`)."""
    labels = labels or {}
    head, sep, rest = message.partition(": ")
    names = [name.strip() for name in head.split(",")]
    if not sep or not all(name.split(".")[0] in _field_names(cls) for name in names):
        return f"{section}: {message}"
    spec_names = []
    for name in names:
        top = name.split(".")[0]
        spec_names.append(labels[top] if top in labels else f"{section}.{name}")
    return f"{', '.join(dict.fromkeys(spec_names))}: {rest}"


def build_section(section: str, cls, overrides, base: dict | None = None, *, fixed: dict[str, str] | None = None,
                  labels: dict[str, str] | None = None, validate: bool = False):
    """`cls` from the pipeline's `base` values with the spec section's `overrides` over them, checked as the stage
    will build it. `fixed`: fields the pipeline sets itself (field -> what to set instead), refused in the
    section; `labels`: fields of `base` that come from the spec's own fields, named as such in errors."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{section}: expected a mapping of option: value, got {shown(overrides)}")
    settable = sorted(_field_names(cls) - set(fixed or {}))
    overrides = checked_fields(cls, overrides, section, ConfigError, cls.HINT or f"expected some of {settable}")
    clash = sorted(set(overrides) & set(fixed or {}))
    if clash:
        raise ConfigError(f"{section}.{clash[0]}: set by the pipeline; {fixed[clash[0]]}")
    check_field_types(cls, overrides, prefix=f"{section}.")
    base = dict(base or {})
    labels = {k: v for k, v in (labels or {}).items() if k in base and k not in overrides}
    try:
        config = cls(**{**base, **overrides})
        return config.validate() if validate else config
    except ConfigError as exc:
        raise ConfigError(section_message(str(exc), section, cls, labels)) from None
    except (TypeError, ValueError) as exc:  # a check in a config that assumed the type: still named by section
        raise ConfigError(f"{section}: {exc}") from None


FINETUNE_FIXED = {"data": "give the dataset as the spec's top-level `data` (the data stage checks it)",
                  "out": "the run goes to <out>/finetune, where the merge stage reads it; set the spec's `out`"}
FINETUNE_LABELS = {"model": "model", "checkpoint": "checkpoint", "init": "checkpoint", "image_size": "image_size",
                   "val_fraction": "val_fraction", "seed": "seed", "split_seed": "seed"}


def finetune_config(spec: PipelineSpec, paths: dict):
    from edgesam.train import FinetuneConfig

    base = {"model": spec.model, "checkpoint": spec.checkpoint, "init": "pretrained" if spec.checkpoint else "random",
            "image_size": spec.image_size, "data": str(paths["data"]), "val_fraction": spec.val_fraction,
            "seed": spec.seed, "split_seed": spec.seed, "out": str(paths["finetune"])}
    return build_section("finetune", FinetuneConfig, spec.finetune, base, fixed=FINETUNE_FIXED, labels=FINETUNE_LABELS)


def prune_job(spec: PipelineSpec, paths: dict):
    from edgesam.compress.config import PruneConfig, PruneJob, RecoveryConfig

    prune = build_section("prune", PruneConfig, spec.prune or {})
    recovery = None
    if spec.recover_epochs > 0:
        recovery = build_section("recover", RecoveryConfig, {}, {"epochs": spec.recover_epochs, "seed": spec.seed},
                                 labels={"epochs": "recover_epochs", "seed": "seed"})
    return PruneJob(out=paths["pruned"], checkpoint=paths["merged"], prune=prune,
                    recovery=recovery, recover_data=paths["data"] if recovery else None,
                    val_fraction=spec.val_fraction, run_dir=paths["prune_run"],
                    latency_runs=3 if spec.measure_latency else 0)


DISTILL_FIXED = {"teacher": "the teacher is the merged model (<out>/merged.pth)",
                 "images": "the student learns on the spec's top-level `data`",
                 "out": "the student goes to <out>/student.pth, where export reads it; set the spec's `out`",
                 "run_dir": "the run goes to <out>/distill (emptied when the stage reruns); set the spec's `out`"}
DISTILL_LABELS = {"val_fraction": "val_fraction", "split_seed": "seed", "seed": "seed", "latency_runs": "measure_latency"}


def distill_config(spec: PipelineSpec, paths: dict):
    base = {"teacher": str(paths["merged"]), "images": str(paths["data"]), "out": str(paths["student"]),
            "run_dir": str(paths["distill_run"]), "cache_dir": str(paths["distill_cache"]),
            "val_fraction": spec.val_fraction, "split_seed": spec.seed, "seed": spec.seed,
            "latency_runs": 3 if spec.measure_latency else 0}  # finetune's split: the student is scored on its val
    return build_section("distill", DistillConfig, spec.distill, base, fixed=DISTILL_FIXED, labels=DISTILL_LABELS,
                         validate=True)


def export_config(spec: PipelineSpec, paths: dict):
    overrides = dict(spec.export)
    free = paths["data"] / "free" / "images"
    if "calib_data" not in overrides and free.is_dir():
        overrides["calib_data"] = str(free.parent)  # the line's own defect-free surfaces
    return build_section("export", ExportConfig, overrides)


_BY_PIPELINE = "the pipeline benches its own bundle, data, reference model and validation split"
BENCH_FIXED = {**{name: _BY_PIPELINE for name in ("bundle", "data", "reference", "out", "split", "val_fraction",
                                                 "split_seed")},
               "min_iou": "set the floor as the spec's top-level `min_iou`",
               "max_latency_ms": "set the floor as the spec's top-level `max_latency_ms`"}
BENCH_LABELS = {"min_iou": "min_iou", "max_latency_ms": "max_latency_ms", "val_fraction": "val_fraction",
                "split_seed": "seed"}


def bench_config(spec: PipelineSpec, paths: dict):
    base = {"bundle": str(paths["bundle"]), "data": str(paths["data"]), "reference": str(spec.final_checkpoint()),
            "out": str(paths["bench"]), "min_iou": spec.min_iou, "max_latency_ms": spec.max_latency_ms,
            "split": "val", "val_fraction": spec.val_fraction, "split_seed": spec.seed, "max_images": 12}
    return build_section("bench", BenchConfig, spec.bench, base, fixed=BENCH_FIXED, labels=BENCH_LABELS)


# ------------------------------------------------------------------------------------ spec check
def _check_variant(name: str, value) -> None:
    from edgesam.models import VARIANTS

    if value not in VARIANTS:
        raise ConfigError(f"{name}: expected a model variant, one of {sorted(VARIANTS)}, got {value!r}")


def check_stages(spec: PipelineSpec) -> None:
    """Build every stage's config from `spec` as the stage itself will, so a bad value in any section is one
    ConfigError ("bench.max_images: expected ...") when the spec is made, before the first stage runs.
    Nothing is read or written: the configs only check values (files are checked by the stage that reads them)."""
    paths = spec.paths()
    finetune = finetune_config(spec, paths)
    if finetune.model is not None:
        _check_variant("finetune.model" if "model" in spec.finetune else "model", finetune.model)
    if spec.prune is not None:
        prune_job(spec, paths)
    if spec.distill is not None:
        _check_variant("distill.student", distill_config(spec, paths).student)
    export_config(spec, paths)
    bench_config(spec, paths)
