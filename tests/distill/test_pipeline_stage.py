"""The pipeline's distill stage: between merge and export, and the student is what export takes.

The whole pipeline runs end to end in tests/pipeline, and a student's export in test_distill_run;
here the stage is called directly on a tiny merged model, which keeps the test fast.
"""
from __future__ import annotations

import shutil

import pytest

from edgesam.models import load_model
from edgesam.pipeline import PipelineSpec
from edgesam.pipeline.stages import build_stages, distill_fingerprint, run_distill_stage


def tiny_spec(out, data, **changes) -> PipelineSpec:
    base = dict(out=str(out), model="vit_t", image_size=64, data=str(data), val_fraction=0.3, prune=None,
                measure_latency=False, export={"precisions": ["fp32"]},
                distill={"student": "vit_n", "epochs": 1, "views_per_image": 1, "eval_max_images": 2, "threads": 1})
    base.update(changes)
    return PipelineSpec(**base)


@pytest.mark.slow
def test_distill_runs_between_merge_and_export_and_hands_export_the_student(tmp_path, teacher_path, line_dir):
    spec = tiny_spec(tmp_path / "pipe", line_dir)
    assert [s.name for s in build_stages(spec)] == ["data", "finetune", "merge", "distill", "export", "bench", "report"]
    paths = spec.paths()
    paths["merged"].parent.mkdir(parents=True)
    shutil.copy(teacher_path, paths["merged"])  # what the merge stage leaves
    ctx = {"spec": spec, "paths": paths, "progress": False, "data": {"path": str(line_dir)}}
    figures = run_distill_stage(ctx)
    assert figures["student"] == "vit_n" and 0.0 <= figures["box_iou_vs_teacher"] <= 1.0
    assert figures["embedding"]["val_mse"] > 0
    assert spec.final_checkpoint() == paths["student"]  # what export and bench take
    _, arch = load_model(None, paths["student"])
    assert arch.variant == "vit_n" and arch.extra["distilled_from"]["teacher"] == str(paths["merged"])
    before = distill_fingerprint(ctx)
    ctx["spec"] = tiny_spec(tmp_path / "pipe", line_dir, distill={"student": "vit_t", "epochs": 1})
    assert distill_fingerprint(ctx) != before  # a changed student reruns the stage


def test_distill_and_prune_together_are_refused_by_name(tmp_path, line_dir):
    with pytest.raises(ValueError, match="prune: null"):
        tiny_spec(tmp_path, line_dir, prune={"ratio": 0.5})
    with pytest.raises(ValueError, match="distill: expected a mapping"):
        tiny_spec(tmp_path, line_dir, distill="vit_n")
