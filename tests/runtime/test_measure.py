"""Measurements against hand-computed figures on synthetic shapes (torch-free, no model needed)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from edgesam_runtime import InvalidInputError
from edgesam_runtime.measure import Calibration, measure_mask, stability_scores
from tests.tolerances import MEASURE_REL_TOL, MEASURE_WIDTH_ATOL_PX


def _canvas(h=240, w=320) -> np.ndarray:
    return np.zeros((h, w), np.uint8)


@pytest.mark.parametrize("start, end", [((20, 40), (260, 40)), ((30, 20), (30, 210)), ((20, 30), (280, 160)),
                                        ((15, 200), (200, 15))])
def test_one_pixel_line_has_its_length_and_width_one(start, end):
    mask = _canvas()
    cv2.line(mask, start, end, 1, thickness=1)
    # a line of pixels from one end pixel to the other spans their centres' distance plus one pixel
    known = math.hypot(end[0] - start[0], end[1] - start[1]) + 1.0
    m = measure_mask(mask.astype(bool))
    assert m.length_px == pytest.approx(known, rel=MEASURE_REL_TOL)
    assert m.max_width_px == pytest.approx(1.0) and m.mean_width_px == pytest.approx(1.0)
    assert m.components == 1 and m.area_px == int(mask.sum())


def test_bent_line_is_measured_along_its_path_not_its_bbox():
    mask = _canvas()
    points = np.array([[20, 200], [80, 30], [160, 210], [290, 40]], np.int32)
    cv2.polylines(mask, [points], isClosed=False, color=1, thickness=1)
    known = sum(math.hypot(*(points[i + 1] - points[i])) for i in range(3)) + 1.0
    assert measure_mask(mask).length_px == pytest.approx(known, rel=MEASURE_REL_TOL)


def test_disc_has_its_area_and_diameter():
    radius = 50
    yy, xx = np.mgrid[:240, :320]
    mask = (xx - 150) ** 2 + (yy - 120) ** 2 <= radius ** 2
    m = measure_mask(mask, Calibration(0.1))
    assert m.area_px == pytest.approx(math.pi * radius ** 2, rel=MEASURE_REL_TOL)
    assert m.area_mm2 == pytest.approx(math.pi * radius ** 2 * 0.01, rel=MEASURE_REL_TOL)
    assert m.max_width_px == pytest.approx(2 * radius + 1, abs=MEASURE_WIDTH_ATOL_PX + 1)  # rim pixels
    assert m.length_px == pytest.approx(2 * radius + 1, rel=MEASURE_REL_TOL)  # a blob's length is its caliper size


def test_bar_length_width_bbox_and_orientation():
    mask = _canvas()
    mask[100:105, 40:240] = 1  # 200 x 5 px
    m = measure_mask(mask, Calibration(0.05))
    assert m.length_px == pytest.approx(200, rel=MEASURE_REL_TOL)
    assert m.max_width_px == pytest.approx(5, abs=MEASURE_WIDTH_ATOL_PX)
    assert m.mean_width_px == pytest.approx(5, abs=MEASURE_WIDTH_ATOL_PX)
    assert m.bbox == (40, 100, 239, 104)
    assert (m.bbox_width_mm, m.bbox_height_mm) == pytest.approx((10.0, 0.25))
    assert m.length_mm == pytest.approx(10.0, rel=MEASURE_REL_TOL)
    assert abs(m.orientation_deg) < 1.0
    vertical = measure_mask(mask.T.copy())
    assert abs(vertical.orientation_deg) == pytest.approx(90.0, abs=1.0)
    diagonal = _canvas()
    cv2.line(diagonal, (20, 20), (200, 200), 1, thickness=3)  # y grows downwards: +45 degrees
    assert measure_mask(diagonal).orientation_deg == pytest.approx(45.0, abs=1.0)


def test_per_axis_calibration_measures_in_square_millimetres():
    mask = _canvas()
    mask[100:104, 40:240] = 1  # 200 px along x, 4 px along y
    cal = Calibration(0.1, 0.3)  # a pixel is 0.1 mm wide and 0.3 mm high
    m = measure_mask(mask, cal)
    assert m.area_mm2 == pytest.approx(800 * 0.1 * 0.3)
    assert m.length_mm == pytest.approx(20.0, rel=MEASURE_REL_TOL)
    assert m.max_width_mm == pytest.approx(1.2, abs=MEASURE_WIDTH_ATOL_PX * 0.1)  # 4 px x 0.3 mm
    assert (m.bbox_width_mm, m.bbox_height_mm) == pytest.approx((20.0, 1.2))
    # the same bar turned upright: length now runs along the 0.3 mm axis
    upright = measure_mask(mask.T.copy(), cal)
    assert upright.length_mm == pytest.approx(60.0, rel=MEASURE_REL_TOL)


def test_two_pieces_sum_their_lengths_and_count_as_components():
    mask = _canvas()
    mask[50, 20:120] = 1
    mask[150, 20:70] = 1
    m = measure_mask(mask)
    assert m.components == 2 and m.length_px == pytest.approx(150, rel=MEASURE_REL_TOL)


def test_defect_at_the_frame_edge_ends_there():
    mask = _canvas()
    mask[0:3, 0:100] = 1
    m = measure_mask(mask)
    assert m.length_px == pytest.approx(100, rel=MEASURE_REL_TOL) and m.max_width_px == pytest.approx(3, abs=1)


def test_empty_mask_measures_zero_without_bbox():
    m = measure_mask(np.zeros((20, 30), bool), Calibration(0.1), predicted_iou=0.4, stability=float("nan"))
    assert m.empty and m.area_px == 0 and m.bbox is None and m.orientation_deg is None
    assert m.length_mm == 0.0 and m.predicted_iou == pytest.approx(0.4) and m.stability is None
    assert measure_mask(np.zeros((20, 30), bool)).length_mm is None  # no calibration: no mm figures


def test_stability_is_the_iou_of_two_thresholds():
    logits = np.full((2, 1, 4, 4), -5.0, np.float32)
    logits[0, 0, :2, :2] = 5.0  # 4 cells far above +1
    logits[0, 0, 2, :2] = 0.5  # 2 cells between -1 and +1
    np.testing.assert_allclose(stability_scores(logits)[0], 4 / 6)
    assert math.isnan(stability_scores(logits)[1])  # nothing above -1: undefined, not perfect


@pytest.mark.parametrize("bad, match", [
    ([[1, 0]], "numpy array"), (np.zeros((2, 2, 2), bool), r"\(H, W\)"), (np.zeros((3, 3), np.float32), "dtype")])
def test_bad_masks_raise_typed_errors(bad, match):
    with pytest.raises(InvalidInputError, match=match):
        measure_mask(bad)


@pytest.mark.parametrize("value", [0, -0.1, float("nan"), "0.1", [0.1, 0.2, 0.3], True])
def test_calibration_refuses_non_positive_or_malformed(value):
    with pytest.raises(InvalidInputError, match="mm_per_px"):
        Calibration.parse(value)


def test_calibration_scalar_or_pair():
    assert Calibration.parse(0.1) == Calibration(0.1, 0.1) and Calibration.parse([0.1, 0.2]).mm_per_px_y == 0.2
    assert Calibration(0.1).isotropic and not Calibration(0.1, 0.2).isotropic


def test_wide_blobs_are_thinned_on_a_reduced_grid_with_the_same_figures(monkeypatch):
    import edgesam_runtime.measure as measure

    mask = np.zeros((400, 600), np.uint8)
    cv2.ellipse(mask, (300, 200), (250, 60), 20, 0, 360, 1, thickness=-1)  # 501 px long, 121 px wide
    reduced = measure_mask(mask)
    monkeypatch.setattr(measure, "THIN_HALF_WIDTH_PX", 10 ** 6)  # thinning at full resolution
    full = measure_mask(mask)
    cell = int(61 // 8)  # the reduction factor for a half-width of ~61 px
    assert reduced.length_px == pytest.approx(full.length_px, rel=MEASURE_REL_TOL)
    assert reduced.length_px == pytest.approx(501, rel=MEASURE_REL_TOL)
    assert reduced.max_width_px == full.max_width_px == pytest.approx(121, abs=MEASURE_WIDTH_ATOL_PX)
    assert abs(reduced.mean_width_px - full.mean_width_px) <= cell  # ridge distances read per cell
