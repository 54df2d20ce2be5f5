"""One prompt plan (prompts depend on the object alone), one split, and the empty-aware agreement gate."""
import numpy as np
import pytest

from edgesam.data import Dataset, load_dataset
from edgesam.eval import Agreement, build_plan, compare_records, mask_agreement, score, scoring_set, train_val
from edgesam.eval.adapters import BoxFillAdapter
from edgesam.eval.split import distillation_split


def _prompts(plan):
    return {item.key: (item.boxes, item.points) for item in plan}


def _reversed(ds: Dataset) -> Dataset:
    return ds.subset(list(range(len(ds)))[::-1])


@pytest.mark.parametrize("kind", ["box", "point"])
def test_an_object_gets_the_same_prompt_whatever_surrounds_it(eval_data, kind):
    ds = load_dataset(eval_data)
    full = _prompts(build_plan(ds, kind, seed=3, box_jitter=0.1))
    assert len(full) == len(ds)
    for other in (build_plan(_reversed(ds), kind, seed=3, box_jitter=0.1),
                  build_plan(ds, kind, seed=3, box_jitter=0.1, max_images=3),
                  build_plan(scoring_set(ds, "val", 0.3, seed=1), kind, seed=3, box_jitter=0.1)):
        for key, (boxes, points) in _prompts(other).items():
            for a, b in ((boxes, full[key][0]), (points, full[key][1])):
                assert (a is None and b is None) or np.array_equal(a, b), key
    changed = _prompts(build_plan(ds, kind, seed=4, box_jitter=0.1))
    assert any(not np.array_equal(changed[k][kind == "point"], full[k][kind == "point"]) for k in full)


def test_prompt_shapes_and_capped_plans_take_classes_in_turn(eval_data):
    ds = load_dataset(eval_data)
    classes = sorted({r.class_name for r in ds.records})
    plan = build_plan(ds, "box", seed=0, max_images=len(classes))
    assert sorted(item.class_name for item in plan) == classes  # one image of each class
    item = plan.items[0]
    assert item.boxes.shape == (item.num_prompts, 4) and item.points is None and not item.multimask
    point = build_plan(ds, "point", seed=0, max_images=1).items[0]
    assert point.points.shape == (point.num_prompts, 1, 2) and point.labels.tolist() == [[1.0]] * point.num_prompts
    assert point.multimask  # one point is ambiguous: the most confident of three candidates answers


def test_one_split_for_every_verb(eval_data):
    ds = load_dataset(eval_data)
    train, val = train_val(ds, 0.3, seed=1)
    assert {r.key for r in scoring_set(eval_data, "val", 0.3, seed=1).records} == {r.key for r in val.records}
    assert not {r.key for r in train.records} & {r.key for r in val.records}
    assert len(scoring_set(eval_data)) == len(ds) == len(train) + len(val)
    with pytest.raises(ValueError, match="split"):
        scoring_set(eval_data, "train")
    # distillation learns from unlabelled images too; they are never held out for scoring
    free = load_dataset(eval_data / "free")
    d_train, d_val = distillation_split(free, 0.3, seed=1)
    assert not free.labelled and len(d_train) == len(free) and len(d_val) == 0


def test_the_baseline_through_the_scorer(eval_data):
    plan = build_plan(load_dataset(eval_data), "box", seed=0)
    records = score(BoxFillAdapter(), plan)
    assert len(records) == plan.num_prompts and not any(r.gt_empty or r.pred_empty for r in records)
    assert all(0.0 < r.iou <= 1.0 for r in records)  # a tight box covers its whole object
    with pytest.raises(ValueError, match="needs box prompts"):
        score(BoxFillAdapter(), build_plan(load_dataset(eval_data), "point", seed=0, max_images=1))


def _masks(n, empty):
    out = np.zeros((n, 8, 8), bool)
    for i in range(n):
        if i not in empty:
            out[i, 2:6, 2:6] = True
    return out


def test_empty_pairs_are_left_out_and_counted():
    ref, pred = _masks(10, empty={0}), _masks(10, empty={0, 1})
    a = mask_agreement(pred, ref, [f"img#{i}" for i in range(10)])
    d = a.to_dict()
    assert d["both_empty"] == 1 and d["reference_empty"] == 1 and d["prediction_empty"] == 2
    assert d["iou"]["n"] == 9 and d["iou"]["mean"] == pytest.approx(8 / 9)  # 1.0 x 8 and 0.0 for img#1
    assert a.nonempty_reference_share == pytest.approx(0.9)
    assert a.floor_failure(0.8, "int8") is None
    assert a.floor_failure(0.95, "int8") == "int8: iou_vs_reference.mean 0.8889 < --min-iou 0.95"
    assert a.warnings("int8") == ["int8: 1 of 10 reference masks are empty: img#0",
                                  "int8: 2 of 10 predicted masks are empty: img#0, img#1"]


def test_an_iou_floor_fails_on_empty_references_and_names_them():
    empty = mask_agreement(_masks(12, empty=set(range(12))), _masks(12, empty=set(range(12))),
                           [f"crack/a{i}#0" for i in range(12)])
    assert empty.mean_iou is None  # nothing to average: no 1.0 from nothing
    msg = empty.floor_failure(0.97, "int8")
    assert msg.startswith("int8: 12 of 12 reference masks are empty (the reference outputs nothing: crack/a0#0")
    assert "(+6 more)" in msg and ">= 90% non-empty references" in msg
    two = mask_agreement(_masks(10, empty=set()), _masks(10, empty={3, 7}), [f"x{i}#0" for i in range(10)])
    msg = two.floor_failure(0.1, "fp16")
    assert "2 of 10 reference masks are empty (the reference found nothing for: x3#0, x7#0)" in msg
    assert isinstance(two, Agreement) and two.prompts == 10


def test_records_compare_only_on_the_same_plan(eval_data):
    ds = load_dataset(eval_data)
    a = score(BoxFillAdapter(), build_plan(ds, "box", seed=0, max_images=2), keep_masks=True)
    b = score(BoxFillAdapter(), build_plan(ds, "box", seed=0, max_images=3), keep_masks=True)
    assert compare_records(a, a).mean_iou == 1.0
    with pytest.raises(ValueError, match="same prompt plan"):
        compare_records(a, b)
    with pytest.raises(ValueError, match="keep_masks"):
        compare_records(score(BoxFillAdapter(), build_plan(ds, "box", seed=0, max_images=2)), a)
