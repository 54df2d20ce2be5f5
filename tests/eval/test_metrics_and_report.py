"""Mask figures and record summaries against hand-computed values; empty/empty pairs are undefined."""
import math

import numpy as np
import pytest

from edgesam_runtime import metrics
from edgesam.eval import EvalReport, compare_reports, score_masks, size_bucket, write_report
from edgesam.eval.adapters import box_fill_masks
from edgesam.eval.plan import ImagePrompts
from tests.tolerances import EVAL_ATOL


def _square(h, w, y0, x0, side):
    m = np.zeros((h, w), bool)
    m[y0:y0 + side, x0:x0 + side] = True
    return m


def _item(gt, key="crack/img", kind="box"):
    return ImagePrompts(0, key, key.split("/")[0], kind, tuple(int(m.sum()) for m in gt))


def test_two_empty_masks_are_undefined_not_perfect():
    empty, full = np.zeros((4, 4), bool), np.ones((4, 4), bool)
    assert math.isnan(metrics.mask_iou(empty, empty)) and math.isnan(metrics.dice(empty, empty))
    assert metrics.mask_iou(empty, full) == 0.0 and metrics.mask_iou(full, full) == 1.0
    ious = metrics.batch_iou(np.stack([empty, full, full]), np.stack([empty, full, empty]))
    assert math.isnan(ious[0]) and ious[1:].tolist() == [1.0, 0.0]
    assert math.isnan(metrics.boundary_fscore(empty, empty)) and math.isnan(metrics.hd95(empty, empty))
    assert metrics.is_empty(np.stack([empty, full])).tolist() == [True, False]
    # an undefined pair never raises (or lowers) a mean: it is left out and counted
    s = metrics.summarize(ious)
    assert s["mean"] == 0.5 and s["n"] == 2 and s["undefined"] == 1
    assert metrics.summarize([float("nan")])["mean"] is None


def test_boundary_and_hd95_hand_computed():
    gt = _square(20, 20, 5, 5, 6)  # 6x6 square: 20 boundary pixels
    assert metrics.mask_boundary(gt).sum() == 20
    shifted = _square(20, 20, 5, 8, 6)  # moved 3 px right
    # every boundary point's nearest counterpart is 0 (overlapping rows/cols) to 3 px away; the 95th
    # percentile over both directions is 3
    assert metrics.hd95(shifted, gt) == pytest.approx(3.0, abs=EVAL_ATOL)
    assert metrics.boundary_fscore(shifted, gt, tolerance=3) == pytest.approx(1.0, abs=EVAL_ATOL)
    # tolerance 2: of the 20 boundary pixels of `shifted`, within 2 px of gt's boundary are columns 8..12
    # of the top and bottom rows (5+5: col 12 is 2 px from gt's corner at col 10) and the left column x=8
    # (4 rows, 2 px from gt's right side); the right column x=13 is 3 px away -> 14/20, symmetric
    assert metrics.boundary_fscore(shifted, gt, tolerance=2) == pytest.approx(0.7, abs=EVAL_ATOL)
    assert metrics.hd95(gt, gt) == 0.0 and math.isinf(metrics.hd95(np.zeros_like(gt), gt))


def test_records_scores_buckets_and_empty_flags():
    gt = np.stack([_square(200, 200, 0, 0, 10), _square(200, 200, 50, 50, 40), _square(200, 200, 100, 0, 100)])
    assert not metrics.is_empty(gt).any()  # every figure below is against a real object
    pred = np.stack([_square(200, 200, 0, 0, 5), gt[1], np.zeros((200, 200), bool)])
    rows = score_masks(_item(gt), pred, gt, boundary=True)
    assert [r.bucket for r in rows] == ["small", "medium", "large"]  # 100, 1600, 10000 px vs 32^2, 96^2
    assert [r.name for r in rows] == ["crack/img#0", "crack/img#1", "crack/img#2"]
    assert rows[0].iou == pytest.approx(25 / 100) and rows[0].dice == pytest.approx(2 * 25 / 125)
    assert rows[1].iou == 1.0 and rows[1].bf == 1.0 and rows[1].hd95 == 0.0
    assert rows[2].iou == 0.0 and math.isinf(rows[2].hd95)
    assert [r.pred_empty for r in rows] == [False, False, True] and not any(r.gt_empty for r in rows)
    assert [r.pred_area for r in rows] == [25, 1600, 0] and rows[0].mask is None
    rep = EvalReport("m", "box", 0, rows)
    assert rep.overall["miou"] == pytest.approx((0.25 + 1 + 0) / 3)
    assert rep.overall["hd95"] == pytest.approx(np.mean([rows[0].hd95, 0.0]))  # inf is left out of the mean
    assert rep.overall["empty_predictions"] == 1 and rep.empty_predictions() == ["crack/img#2"]
    assert "1 of 3 predicted masks are empty" in rep.to_markdown()
    assert size_bucket(32 * 32 - 1) == "small" and size_bucket(32 * 32) == "medium"


def test_prompts_without_ground_truth_keep_their_masks_for_a_reference_only():
    """Prompts placed on an unlabelled image: nothing to score against, so IoU is undefined (never 0 or 1),
    and the masks are kept for `compare_records`."""
    from dataclasses import replace

    pred = np.stack([_square(50, 50, 0, 0, 10), np.zeros((50, 50), bool)])
    item = replace(_item(pred), areas=(0, 0), ground_truth=False)
    rows = score_masks(item, pred, None, keep_masks=True)
    assert all(math.isnan(r.iou) and math.isnan(r.dice) for r in rows)
    assert [r.pred_empty for r in rows] == [False, True] and not any(r.gt_empty for r in rows)
    assert np.array_equal(rows[0].mask, pred[0]) and EvalReport("m", "box", 0, rows).overall["miou"] is None


def test_box_fill_baseline_and_comparison(tmp_path):
    boxes = np.array([[1, 2, 3, 5]], np.float32)  # inclusive corners: 3 wide, 4 high
    fill = box_fill_masks(boxes, (10, 10))
    assert fill.sum() == 12 and fill[0, 2:6, 1:4].all()
    gt = np.zeros((1, 10, 10), bool)
    gt[0, 2:6, 1:3] = True  # 8 px inside the box
    base = EvalReport("box", "box", 0, score_masks(_item(gt), fill, gt))
    tuned = EvalReport("tuned", "box", 0, score_masks(_item(gt), gt.copy(), gt))
    cmp = compare_reports(base, tuned)
    assert cmp["groups"]["all"]["miou"]["gain"] == pytest.approx(1 - 8 / 12)
    jp, mp = write_report(cmp, tmp_path, "cmp")
    assert "+0.3333" in mp.read_text() and jp.exists()
    other = EvalReport("other", "box", 0, score_masks(_item(gt, key="pit/x"), gt.copy(), gt))
    with pytest.raises(ValueError, match="same objects"):
        compare_reports(base, other)
