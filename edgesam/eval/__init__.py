"""Measuring accuracy, in one place: which images (split), which prompts (plan), one scorer over any
predictor (adapters), per-prompt records, their summaries, and agreement with a reference.

    plan = build_plan(scoring_set("data/", "val", 0.2, seed=0), "box", seed=0)
    records = score(SegmenterAdapter(Segmenter.open("bundle", graph_set="int8")), plan, keep_masks=True)
    reference = score(model_adapter(model), plan, keep_masks=True)
    compare_records(records, reference).floor_failure(0.97, "int8")   # None, or why the gate fails

`eval`, training validation, `prune`, `bench`/`check` and the pipeline report all measure through
here, so their figures agree on the same model, data, split and seed.
"""
from edgesam.eval.adapters import BoxFillAdapter, MaskPredictor, SegmenterAdapter, TorchPredictorAdapter
from edgesam.eval.agreement import MIN_NONEMPTY_REFERENCE_SHARE, Agreement, compare_records, mask_agreement
from edgesam.eval.plan import PROMPT_KINDS, ImagePrompts, PromptPlan, build_plan
from edgesam.eval.report import EvalReport, compare_reports, comparison_markdown, summarize_records, write_report
from edgesam.eval.run import evaluate, evaluate_model, model_adapter, run_eval
from edgesam.eval.scoring import PromptRecord, score, score_masks, size_bucket
from edgesam.eval.split import labelled_images, scoring_set, train_val

__all__ = [
    "Agreement", "BoxFillAdapter", "EvalReport", "ImagePrompts", "MIN_NONEMPTY_REFERENCE_SHARE", "MaskPredictor",
    "PROMPT_KINDS", "PromptPlan", "PromptRecord", "SegmenterAdapter", "TorchPredictorAdapter", "build_plan",
    "compare_records", "compare_reports", "comparison_markdown", "evaluate", "evaluate_model", "labelled_images",
    "mask_agreement", "model_adapter", "run_eval", "score", "score_masks", "scoring_set", "size_bucket",
    "summarize_records", "train_val", "write_report",
]
