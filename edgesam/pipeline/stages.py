"""The train-to-edge stages, each a thin call into its own room's library function.

data -> finetune -> merge -> prune or distill (optional) -> export -> bench -> report. Every stage reads what
the previous one wrote (paths under the pipeline's out dir) and records its figures.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from edgesam.bench.run import run_bench
from edgesam.data import check_dataset, synthesize_dataset
from edgesam.pipeline.configs import (bench_config, check_stages, distill_config, export_config, finetune_config,
                                      prune_job)
from edgesam.pipeline.report import write_pipeline_report
from edgesam.pipeline.runner import Stage
from edgesam.pipeline.spec import PipelineSpec
from edgesam_runtime.files import sha256_file


def _data_signature(path: Path) -> dict:
    """Cheap fingerprint of a dataset folder: file count, bytes and newest modification time."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return {"path": str(path.resolve()), "files": len(files), "bytes": sum(p.stat().st_size for p in files),
            "mtime": max((p.stat().st_mtime for p in files), default=0)}


def _file_sig(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


# ------------------------------------------------------------------------------------------ data
def run_data(ctx: dict) -> dict:
    spec, paths = ctx["spec"], ctx["paths"]
    if spec.data is None:
        s = spec.synth
        synthesize_dataset(paths["data"], count=s.count, seed=s.seed, size=s.size, free_count=s.free)
    report = check_dataset(paths["data"])
    if not report.ok:
        raise ValueError(f"{paths['data']}: dataset has errors:\n  " + "\n  ".join(report.errors[:20]))
    summary = report.to_dict()
    return {"path": str(paths["data"]), "synthetic": spec.data is None, "classes": summary.get("classes"),
            "totals": summary.get("totals")}


def data_fingerprint(ctx: dict) -> dict:
    spec = ctx["spec"]
    if spec.data is None:
        return {"synth": vars(spec.synth)}
    return {"data": _data_signature(Path(spec.data))}


# -------------------------------------------------------------------------------------- finetune
def run_finetune(ctx: dict) -> dict:
    from edgesam.train import finetune

    # resume="auto": a rerun after a kill continues the interrupted run instead of starting over
    result = finetune(finetune_config(ctx["spec"], ctx["paths"]), progress=ctx["progress"], resume="auto")
    keep = ("strategy", "init", "best_miou", "best_dice", "trainable_params", "images_per_s", "peak_mem_gib", "wall_s",
            "adapter_bytes", "epochs", "steps", "start_miou", "kept_start", "best_epoch")
    rows = {row["epoch"]: row for row in result.history}
    per_class = {"start": (rows.get(0) or {}).get("per_class", {}),
                 "adapted": (rows.get(result.best_epoch) or {}).get("per_class", {})}
    return {**{k: getattr(result, k) for k in keep}, "per_class": per_class}


def finetune_fingerprint(ctx: dict) -> dict:
    spec = ctx["spec"]
    return {"config": finetune_config(spec, ctx["paths"]).to_dict(), "data": ctx.get("data"),
            "checkpoint": _file_sig(Path(spec.checkpoint)) if spec.checkpoint else None}


# ----------------------------------------------------------------------------------------- merge
def run_merge(ctx: dict) -> dict:
    from edgesam.train import merge_run

    report = merge_run(ctx["paths"]["finetune"], ctx["paths"]["merged"])
    return report.to_dict()


def merge_fingerprint(ctx: dict) -> dict:
    return {"finetune": ctx.get("finetune"), "adapter": _file_sig(ctx["paths"]["finetune"] / "last.pt")}


# ----------------------------------------------------------------------------------------- prune
def run_prune_stage(ctx: dict) -> dict:
    from edgesam.compress.pipeline import run_prune

    report = run_prune(prune_job(ctx["spec"], ctx["paths"]))
    return {"prune": report.get("prune"), "latency": report.get("latency"), "accuracy": report.get("accuracy")}


def prune_fingerprint(ctx: dict) -> dict:
    return {"job": prune_job(ctx["spec"], ctx["paths"]).to_dict(), "merged": _file_sig(ctx["paths"]["merged"])}


# --------------------------------------------------------------------------------------- distill
def run_distill_stage(ctx: dict) -> dict:
    from edgesam.distill import distill

    cfg = distill_config(ctx["spec"], ctx["paths"])
    shutil.rmtree(cfg.run_path, ignore_errors=True)  # inputs changed: a fresh run (the teacher cache stays valid)
    report = distill(cfg, progress=ctx["progress"])
    students = report["agreement"]["students"]
    return {"student": cfg.student, "size": report["size"], "embedding": report["embedding"]["student"],
            "box_iou_vs_teacher": students["student"]["box"]["iou_vs_teacher"]["mean"],
            "untrained_box_iou_vs_teacher": students["untrained"]["box"]["iou_vs_teacher"]["mean"],
            "teacher_task_miou": report["agreement"]["teacher_task_box_miou"],
            "student_task_miou": students["student"]["task_box_miou"], "latency": report.get("latency")}


def distill_fingerprint(ctx: dict) -> dict:
    return {"config": distill_config(ctx["spec"], ctx["paths"]).to_dict(), "merged": _file_sig(ctx["paths"]["merged"]),
            "data": ctx.get("data")}


# ---------------------------------------------------------------------------------------- export
def run_export(ctx: dict) -> dict:
    from edgesam.export import export_bundle

    spec, paths = ctx["spec"], ctx["paths"]
    manifest = export_bundle(spec.final_checkpoint(), paths["bundle"], export_config(spec, paths), progress=ctx["progress"])
    graphs = {name: {part: entry["bytes"] for part, entry in parts.items()} for name, parts in manifest["graphs"].items()}
    return {"graphs_bytes": graphs, "checks": manifest.get("checks", {})}


def export_fingerprint(ctx: dict) -> dict:
    spec = ctx["spec"]
    return {"config": export_config(spec, ctx["paths"]).to_dict(), "checkpoint": _file_sig(spec.final_checkpoint())}


# ----------------------------------------------------------------------------------------- bench
def run_bench_stage(ctx: dict) -> dict:
    report = run_bench(bench_config(ctx["spec"], ctx["paths"]))
    if not report["floors"]["passed"]:
        raise RuntimeError("floors missed: " + "; ".join(report["floors"]["missed"]))
    return {"formats": report["formats"], "floors": report["floors"], "images": report["images"],
            "prompts": report["prompts"], "files": report.get("files", {})}


def bench_fingerprint(ctx: dict) -> dict:
    return {"config": bench_config(ctx["spec"], ctx["paths"]).to_dict(), "export": ctx.get("export"),
            "manifest": _file_sig(ctx["paths"]["bundle"] / "manifest.json")}


# ---------------------------------------------------------------------------------------- report
def run_report(ctx: dict) -> dict:
    return write_pipeline_report(ctx)


def build_stages(spec: PipelineSpec) -> list[Stage]:
    check_stages(spec)  # again: a spec changed after it was made is checked before the first stage too
    paths = spec.paths()
    stages = [
        Stage("data", run_data, data_fingerprint, lambda c: [paths["data"]]),
        Stage("finetune", run_finetune, finetune_fingerprint, lambda c: [paths["finetune"] / "last.pt"]),
        Stage("merge", run_merge, merge_fingerprint, lambda c: [paths["merged"]]),
    ]
    if spec.prune is not None:
        stages.append(Stage("prune", run_prune_stage, prune_fingerprint, lambda c: [paths["pruned"]]))
    if spec.distill is not None:
        stages.append(Stage("distill", run_distill_stage, distill_fingerprint, lambda c: [paths["student"]]))
    stages += [
        Stage("export", run_export, export_fingerprint, lambda c: [paths["bundle"] / "manifest.json"]),
        Stage("bench", run_bench_stage, bench_fingerprint, lambda c: [paths["bench"]]),
        Stage("report", run_report, lambda c: {}, lambda c: [paths["report"]], always=True),
    ]
    return stages
