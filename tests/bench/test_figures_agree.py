"""`eval`, `bench` and the pipeline report measure through one scorer: on the same model, data, split
and seed their task mIoU is the same number, not merely a close one."""
from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from edgesam.cli.main import main

SEED, VAL_FRACTION = 1, 0.4


def test_eval_bench_and_pipeline_report_agree_exactly(bench_setup, tmp_path):
    from edgesam.data import synthesize_dataset
    from edgesam.pipeline import PipelineSpec
    from edgesam.pipeline.report import task_accuracy

    data = synthesize_dataset(tmp_path / "data", count=8, seed=4, size=80)
    checkpoint = bench_setup["checkpoint"]
    runner = CliRunner()

    result = runner.invoke(main, ["eval", "--checkpoint", str(checkpoint), "--data", str(data), "--split", "val",
                                  "--val-fraction", str(VAL_FRACTION), "--split-seed", str(SEED), "--seed", str(SEED),
                                  "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    evaluated = json.loads((tmp_path / "ev" / "eval.json").read_text())

    result = runner.invoke(main, ["bench", str(bench_setup["bundle"]), "--data", str(data), "--reference", str(checkpoint),
                                  "--split", "val", "--val-fraction", str(VAL_FRACTION), "--split-seed", str(SEED),
                                  "--seed", str(SEED), "--max-images", "100", "--torch-fast", "off", "--threads", "1",
                                  "--out", str(tmp_path / "bench")])
    assert result.exit_code == 0, result.output
    benched = {row["format"]: row for row in json.loads((tmp_path / "bench" / "bench.json").read_text())["formats"]}

    spec = PipelineSpec(out=str(tmp_path / "pipe"), prune=None, val_fraction=VAL_FRACTION, seed=SEED)
    spec.out_dir.mkdir()
    shutil.copy(checkpoint, spec.out_dir / "merged.pth")  # the pipeline's final model, without pruning
    reported = task_accuracy({"data": data}, spec)

    n = evaluated["overall"]["n"]
    assert n == benched["pytorch"]["prompts"] == reported["val_objects"] >= 3
    assert evaluated["overall"]["empty_predictions"] == 0  # the figure is about real masks
    assert evaluated["overall"]["miou"] == benched["pytorch"]["task_iou"]["mean"] == reported["val_miou"]
    assert 0.0 < reported["val_miou"] < 1.0
