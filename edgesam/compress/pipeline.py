"""`edgesam prune` end to end: load, prune, measure, recover, measure, save, report.

Every figure the issue asks for lands in the run dir (report.json / report.md, status.jsonl,
metrics.csv of the recovery) and in the returned report: parameters, encoder FLOPs, ONNX Runtime
encoder latency (pruned vs unpruned, side by side), mask IoU against the unpruned model and task
mIoU before and after recovery.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from edgesam.data import list_images, load_dataset, read_image
from edgesam.eval.split import distillation_split, scoring_set
from edgesam_runtime import geometry
from edgesam.compress.accuracy import accuracy_line, accuracy_warnings, agreement_with_unpruned, unpruned_reference
from edgesam.compress.config import PruneJob
from edgesam.compress.latency import encoder_latency
from edgesam.compress.recover import recover
from edgesam.compress.report import format_report
from edgesam.compress.runlog import RunLog
from edgesam.compress.structured import prune_model
from edgesam.models import load_model, save_checkpoint
from edgesam_runtime.files import write_json_atomic, write_text_atomic


def run_prune(job: PruneJob, log=print) -> dict:
    """Run the whole stage; returns the report written to `job.run_dir/report.json`."""
    recorder = RunLog(job.run_dir)
    recorder.text("config.yaml", yaml.safe_dump(job.to_dict(), sort_keys=False))
    recorder.status("running", "pruning")
    teacher, arch = load_model(job.model, job.checkpoint, job.image_size)
    calib = calibration_batches(job, arch.image_size) if job.prune.importance == "taylor" else None
    pruned, new_arch, report = prune_model(teacher, arch, job.prune, calib)
    report = {"source": str(job.checkpoint or job.model), "out": str(job.out), "prune": report}
    log(f"pruned: encoder params {report['prune']['encoder_params']['before'] / 1e6:.2f} M -> "
        f"{report['prune']['encoder_params']['after'] / 1e6:.2f} M, GFLOPs {report['prune']['encoder_gflops']['before']:.2f} -> "
        f"{report['prune']['encoder_gflops']['after']:.2f}")
    _accuracy_and_recovery(job, teacher, pruned, report, log)
    if job.latency_runs:
        report["latency"] = _latency(teacher, pruned, job)
        log(f"ORT encoder latency: unpruned {report['latency']['unpruned']['median_ms']:.1f} ms, pruned "
            f"{report['latency']['pruned']['median_ms']:.1f} ms ({report['latency']['speedup']:.2f}x)")
    save_checkpoint(pruned, job.out, new_arch)
    write_json_atomic(job.run_dir / "report.json", report)
    write_text_atomic(job.run_dir / "report.md", format_report(report))
    recorder.status("done", f"wrote {job.out}", _headline(report))
    return report


def _accuracy_and_recovery(job: PruneJob, teacher, pruned, report: dict, log) -> None:
    train = val = None
    seed = job.recovery.seed if job.recovery else 0
    if job.recover_data is not None:
        train, val = distillation_split(load_dataset(job.recover_data), job.val_fraction, seed)
    if job.eval_data is not None:
        val = scoring_set(job.eval_data)
    if val is None:
        return
    reference = unpruned_reference(teacher, val, job.eval_max_images, seed)
    report["accuracy"] = {"before_recovery": agreement_with_unpruned(pruned, reference)}
    _log_accuracy(report["accuracy"], "before_recovery", log)
    if job.recovery is None:
        return
    report["recovery"] = recover(pruned, teacher, train, job.recovery, job.run_dir, log=log)
    report["accuracy"]["after_recovery"] = agreement_with_unpruned(pruned, reference)
    _log_accuracy(report["accuracy"], "after_recovery", log)


def _log_accuracy(accuracy: dict, stage: str, log) -> None:
    log(f"accuracy {stage.replace('_', ' ')}: {accuracy_line(accuracy[stage])}")
    for warning in accuracy_warnings(accuracy[stage], stage.replace("_", " ")):
        log(f"warning: {warning}")


def _latency(teacher, pruned, job: PruneJob) -> dict:
    lat = encoder_latency({"unpruned": teacher, "pruned": pruned}, runs=job.latency_runs, work_dir=job.run_dir)
    lat["speedup"] = lat["unpruned"]["median_ms"] / lat["pruned"]["median_ms"]
    lat["backend"] = "onnxruntime CPUExecutionProvider, fp32, round-robin"
    return lat


def calibration_batches(job: PruneJob, image_size: int) -> list[torch.Tensor]:
    """Preprocessed image batches for the taylor score, from --calib-data (else --recover-data)."""
    source = job.calib_data or job.recover_data
    if source is None:
        raise ValueError("prune: --importance taylor needs images: pass --calib-data DIR or --recover-data DIR")
    want = job.prune.calib_batches * job.prune.calib_batch_size
    paths = list_images(source) if Path(source).is_dir() else []
    if not paths:
        paths = [r.image_path for r in load_dataset(source).records]
    if not paths:
        raise ValueError(f"{source}: no images found for calibration")
    rng = np.random.default_rng(job.prune.seed)
    chosen = [paths[i] for i in sorted(rng.choice(len(paths), min(want, len(paths)), replace=False))]
    images = [torch.from_numpy(geometry.preprocess(read_image(p), image_size)[0]) for p in chosen]
    size = job.prune.calib_batch_size
    return [torch.cat(images[i:i + size]) for i in range(0, len(images), size)]


def _headline(report: dict) -> dict:
    out = {"encoder_params_ratio": report["prune"]["encoder_params"]["ratio"],
           "encoder_gflops_ratio": report["prune"]["encoder_gflops"]["ratio"]}
    if "latency" in report:
        out["ort_speedup"] = report["latency"]["speedup"]
    for stage, acc in report.get("accuracy", {}).items():
        out[f"iou_vs_unpruned_{stage}"] = acc["iou_vs_unpruned"]["mean"]
        out[f"unpruned_empty_{stage}"] = acc["empty"]["reference_empty"]
    return out
