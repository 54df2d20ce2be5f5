"""The pipeline report says it when masks are empty: in report.md, in the stage headlines, on report.png."""
import pytest
import numpy as np

from edgesam.pipeline import PipelineSpec
from edgesam.pipeline.report import _bench_headline, _plot, format_report


def _bench_row(fmt, empty):
    return {"format": fmt, "backend": "onnxruntime", "prompts": 3, "empty": {"prediction": empty, "reference": 3},
            "iou_vs_reference": {"mean": None, "p5": None}, "task_iou": {"mean": 0.0}}


@pytest.mark.slow
def test_empty_masks_are_named_in_the_report(tmp_path):
    bench = {"formats": [_bench_row("pytorch", 3), _bench_row("fp32", 3)], "images": 1, "prompts": 3,
             "floors": {"min_iou": None, "max_latency_ms": None, "max_encoder_ms": None, "passed": True},
             "warnings": ["pytorch: 3 of 3 reference masks are empty: a/x#0, a/x#1, a/x#2"]}
    ctx = {"spec": PipelineSpec(out=str(tmp_path)), "paths": {"data": tmp_path}, "stage_seconds": {"bench": 1.0},
           "bench": bench, "accuracy": {"val_miou": 0.0, "box_baseline_miou": 0.5, "val_objects": 3,
                                        "val_empty_predictions": ["a/x#0", "a/x#1", "a/x#2"]},
           "samples": {"images": 1, "masks": 3, "empty": ["a/x#0", "a/x#1", "a/x#2"]}}
    text = format_report(ctx, "report.png")
    assert "3 of 3 masks of the final model are empty" in text
    assert "report.png: 3 of 3 bundle masks are empty" in text and "3/3 !" in text
    assert "warning: pytorch: 3 of 3 reference masks are empty" in text
    # "floors passed" is no verdict when no floor was set (an empty model passed it before)
    assert _bench_headline(bench) == "no floors set; empty masks: pytorch 3/3, fp32 3/3"
    sample = {"image": np.full((20, 30), 100, np.uint8), "gt": np.ones((1, 20, 30), bool), "boxes": np.array([[2, 2, 9, 9]]),
              "pred": np.zeros((1, 20, 30), bool), "empty": ["a/x#0"], "title": "a/x (int8)"}
    _plot([sample], {"bench": 1.0}, tmp_path / "report.png")
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"
