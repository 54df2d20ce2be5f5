"""Evaluate a model on a dataset: the library side of `edgesam eval`, training validation and the pipeline report."""
from __future__ import annotations

import tempfile
from pathlib import Path

from edgesam.eval.adapters import BoxFillAdapter, TorchPredictorAdapter
from edgesam.eval.plan import PromptPlan, build_plan
from edgesam.eval.report import EvalReport, compare_reports, comparison_markdown, write_report
from edgesam.eval.scoring import score
from edgesam.eval.split import scoring_set


def model_adapter(model, device: str = "cpu", name: str = "pytorch") -> TorchPredictorAdapter:
    """A `Sam` answering through the PyTorch reference predictor (its `set_image`/`predict`)."""
    from edgesam.reference.predictor import SamReferencePredictor

    return TorchPredictorAdapter(SamReferencePredictor(model, device), name)


def evaluate(predictor, plan: PromptPlan, label: str, *, boundary: bool = True, meta: dict | None = None,
             progress: bool = False) -> EvalReport:
    """Score `predictor` (an adapter, see `edgesam.eval.adapters`) on every prompt of `plan`."""
    records = score(predictor, plan, boundary=boundary, progress=f"eval {label}" if progress else None)
    return EvalReport(label, plan.kind, plan.seed, records, {**plan.describe(), **(meta or {})})


def evaluate_model(model, dataset, prompt: str = "box", seed: int = 0, *, box_jitter: float = 0.0,
                   max_images: int | None = None, boundary: bool = True, device: str = "cpu", label: str = "model",
                   meta: dict | None = None, progress: bool = False) -> EvalReport:
    """Score a `Sam` (None: the box-filled baseline) on the prompt plan of `dataset`."""
    plan = build_plan(dataset, prompt, seed, box_jitter, max_images)
    predictor = BoxFillAdapter() if model is None else model_adapter(model, device)
    return evaluate(predictor, plan, label, boundary=boundary, meta=meta, progress=progress)


def run_eval(checkpoint, data, prompt="box", seed=0, *, adapter=None, base=None, box_jitter=0.0, split="all",
             val_fraction=0.2, split_seed=0, image_size=None, max_images=None, out=None) -> str:
    """What `edgesam eval` does: evaluate one model, or a tuned model against a base; returns markdown.

    With `adapter` (a finetune run dir) the tuned model is the checkpoint with that adapter merged
    (verified by `merge_run`) and the base is the checkpoint itself. `seed` seeds the prompts (and which
    images a `max_images` cap keeps); with `split="val"`, `val_fraction` and `split_seed` must be the
    finetune run's.
    """
    from edgesam.models import load_model

    plan = build_plan(scoring_set(data, split, val_fraction, split_seed), prompt, seed, box_jitter, max_images)
    tuned_path, base_path = Path(checkpoint), Path(base) if base else None
    with tempfile.TemporaryDirectory() as tmp:
        if adapter:
            from edgesam.train.merge import merge_run

            base_path = tuned_path
            tuned_path = Path(tmp) / "merged.pth"
            merge_run(adapter, tuned_path, base=base_path)
        reports = []
        for path in ([base_path] if base_path else []) + [tuned_path]:
            model, arch = load_model(None, path, image_size)
            init = arch.extra.get("init", "pretrained")
            label = Path(adapter).name + " (adapter)" if adapter and path == tuned_path else Path(path).name
            label += " [init: random]" if init == "random" else ""
            reports.append(evaluate(model_adapter(model), plan, label, progress=True,
                                    meta={"checkpoint": str(path), "init": init, "variant": arch.variant,
                                          "image_size": arch.image_size, "split": split}))
    if len(reports) == 1:
        if out:
            write_report(reports[0], out)
        return reports[0].to_markdown()
    cmp = compare_reports(*reports)
    if out:
        write_report(reports[0], out, "eval_base")
        write_report(reports[1], out, "eval_tuned")
        write_report(cmp, out, "eval_comparison")
    return comparison_markdown(cmp)
