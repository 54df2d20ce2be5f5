"""`edgesam prune` end to end on a tiny model: checkpoint in, pruned checkpoint + report out."""
from __future__ import annotations

import json

import pytest
import torch
import yaml
from click.testing import CliRunner

from edgesam.cli.main import main
from edgesam.models import create_model, save_checkpoint


@pytest.fixture(scope="module")
def cli_run(tiny, synth_dir, tmp_path_factory):
    model, arch = tiny
    tmp = tmp_path_factory.mktemp("cli")
    save_checkpoint(model, tmp / "base.pth", arch)
    (tmp / "spec.yaml").write_text(yaml.safe_dump({"recover": {"eval_images": 2, "progress": False, "lr": 3e-4}}))
    args = ["prune", "-c", str(tmp / "spec.yaml"), "--checkpoint", str(tmp / "base.pth"), "--head-ratio", "0.34", "--mlp-ratio", "0.5",
            "--importance", "taylor", "--remove-blocks", "3", "--out", str(tmp / "pruned.pth"),
            "--recover-data", str(synth_dir), "--recover-steps", "3", "--latency-runs", "1", "--eval-max-images", "3"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result, tmp


@pytest.mark.slow
def test_cli_writes_a_reloadable_pruned_checkpoint(cli_run, tiny):
    result, tmp = cli_run
    assert result.exit_code == 0, result.output
    model = create_model(checkpoint=tmp / "pruned.pth")  # no flags: the arch is in the checkpoint
    assert len(model.image_encoder.blocks) == 5
    assert [b.attn.num_heads for b in model.image_encoder.blocks] == [2] * 5
    with torch.no_grad():
        assert model.image_encoder(torch.zeros(1, 3, 64, 64)).shape == (1, 256, 4, 4)


def test_cli_report_has_every_figure(cli_run):
    result, tmp = cli_run
    run_dir = tmp / "pruned_prune_run"
    report = json.loads((run_dir / "report.json").read_text())
    assert report["prune"]["encoder_params"]["after"] < report["prune"]["encoder_params"]["before"]
    assert 0 < report["prune"]["encoder_gflops"]["ratio"] < 1
    assert report["latency"]["pruned"]["median_ms"] > 0 and report["latency"]["speedup"] > 0
    for stage in ("before_recovery", "after_recovery"):
        acc = report["accuracy"][stage]
        assert acc["empty"]["reference_empty"] == 0  # the unpruned model's masks are real: the IoU means something
        assert acc["iou_vs_unpruned"]["n"] == acc["empty"]["prompts"] > 0 and 0 <= acc["iou_vs_unpruned"]["mean"] <= 1
        assert 0 <= acc["task_iou"]["mean"] <= 1
    assert report["recovery"]["steps"] == 3
    assert report["recovery"]["config"]["eval_images"] == 2  # from the YAML file, merged with the flags
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["prune"]["importance"] == "taylor"
    md = (run_dir / "report.md").read_text()
    assert "ORT encoder latency" in md and "after recovery" in md and "empty unpruned" in md
    assert "mask IoU vs unpruned" in result.output


def test_cli_errors_are_usage_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["prune", "--model", "vit_t"])
    assert result.exit_code == 2 and "--out" in result.output
    result = runner.invoke(main, ["prune", "--model", "vit_t", "--out", str(tmp_path / "p.pth"), "--ratio", "1.5"])
    assert result.exit_code == 2 and "ratio" in result.output
    result = runner.invoke(main, ["prune", "--model", "vit_t", "--out", str(tmp_path / "p.pth"), "--remove-blocks", "a"])
    assert result.exit_code == 2 and "block indices" in result.output
    assert "Example" in runner.invoke(main, ["prune", "--help"]).output


def test_recover_data_alone_enables_recovery_and_flags_override_yaml(tmp_path):
    from edgesam.compress.config import build_job

    flags = {"model": "vit_t", "out": tmp_path / "p.pth", "recover_data": tmp_path, "ratio": 0.25}
    job = build_job({"prune": {"ratio": 0.5, "importance": "taylor"}}, flags)
    assert job.recovery is not None and job.prune.ratio == 0.25 and job.prune.importance == "taylor"
    job = build_job({}, {"model": "vit_t", "out": tmp_path / "p.pth", "eval_data": tmp_path})
    assert job.recovery is None
    with pytest.raises(ValueError, match="unknown keys"):
        build_job({"ratio": 0.5}, {"model": "vit_t", "out": tmp_path / "p.pth"})
