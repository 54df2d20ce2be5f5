"""Recovery fine-tuning: distillation from the unpruned teacher lowers the distillation loss."""
from __future__ import annotations

import copy
import csv
import json

import pytest
import torch

from edgesam.compress import PruneConfig, RecoveryConfig, prune_model
from edgesam.compress.recover import recover
from edgesam.data import load_dataset


@pytest.fixture(scope="module")
def recovered(tiny, synth_dir, tmp_path_factory):
    teacher, arch = tiny
    teacher = copy.deepcopy(teacher)
    pruned, _, _ = prune_model(teacher, arch, PruneConfig(ratio=0.5))
    before = copy.deepcopy(pruned.state_dict())
    run_dir = tmp_path_factory.mktemp("recover_run")
    cfg = RecoveryConfig(epochs=1, max_steps=5, lr=3e-4, eval_images=3, progress=False)
    report = recover(pruned, teacher, load_dataset(synth_dir), cfg, run_dir=run_dir, log=lambda m: None)
    return report, run_dir, pruned, before, teacher, tiny[0]


def test_recovery_lowers_the_distillation_loss(recovered):
    report = recovered[0]
    assert report["steps"] == 5
    assert report["distill_after"]["loss"] < report["distill_before"]["loss"]
    assert report["distill_after"]["embed_mse"] < report["distill_before"]["embed_mse"]


def test_recovery_trains_only_the_student_encoder(recovered):
    _, _, pruned, before, teacher, original = recovered
    after = pruned.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all(k.startswith("image_encoder.") for k in changed)
    assert all(torch.equal(v, original.state_dict()[k]) for k, v in teacher.state_dict().items())
    assert not any(p.requires_grad for p in pruned.parameters())


def test_recovery_writes_run_dir_files(recovered):
    report, run_dir, *_ = recovered
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == list(range(1, 6))
    assert all(float(r["embed_mse"]) > 0 for r in rows)
    events = [json.loads(line) for line in (run_dir / "status.jsonl").read_text().splitlines()]
    assert events[0]["state"] == "running" and events[-1]["state"] == "done"
    assert events[-1]["figures"]["distill_after"]["loss"] == pytest.approx(report["distill_after"]["loss"])


def test_recovery_config_validation_names_the_field():
    with pytest.raises(ValueError, match="lr"):
        RecoveryConfig(lr=-1.0)
    with pytest.raises(ValueError, match="epochs"):
        RecoveryConfig(epochs=0)
