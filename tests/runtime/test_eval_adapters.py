"""The one scorer over the runtime and the PyTorch reference: same plan, same prompts, agreeing masks."""
from __future__ import annotations

import pytest

from edgesam.data import load_dataset, synthesize_dataset
from edgesam.eval import SegmenterAdapter, build_plan, compare_records, model_adapter, score


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("adapters"), count=4, seed=1, size=90)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["box", "point"])
def test_runtime_and_reference_score_the_same_plan_alike(segmenter, tiny_model, data, kind):
    plan = build_plan(load_dataset(data), kind, seed=0, box_jitter=0.1)
    runtime = score(SegmenterAdapter(segmenter), plan, keep_masks=True)
    reference = score(model_adapter(tiny_model), plan, keep_masks=True)
    agreement = compare_records(runtime, reference)
    d = agreement.to_dict()
    assert d["reference_empty"] == 0 and d["prediction_empty"] == 0  # the IoU below compares real masks
    assert d["prompts"] == plan.num_prompts >= 4 and agreement.floor_failure(0.99, "fp32") is None
    assert d["task_iou"]["mean"] == pytest.approx(d["reference_task_iou"]["mean"], abs=0.01)
    assert [r.name for r in runtime] == [f"{item.key}#{k}" for item in plan for k in range(item.num_prompts)]


from tests.runtime.test_roi_bundle import roi_bundle, roi_checkpoint  # noqa: E402,F401  (fixtures)


@pytest.mark.slow
def test_a_roi_framed_model_is_scored_through_its_own_calls(roi_bundle, roi_checkpoint, data):
    """The scorer never touches encoders: a model that crops around each box is scored unchanged."""
    from edgesam.models import create_model
    from edgesam_runtime import Segmenter

    plan = build_plan(load_dataset(data), "box", seed=0, box_jitter=0.1)
    runtime = score(SegmenterAdapter(Segmenter.open(roi_bundle, threads=1)), plan, keep_masks=True)
    reference = score(model_adapter(create_model(checkpoint=roi_checkpoint)), plan, keep_masks=True)
    agreement = compare_records(runtime, reference)
    assert agreement.to_dict()["reference_empty"] == 0  # real masks on both sides
    assert agreement.floor_failure(0.99, "roi fp32") is None
