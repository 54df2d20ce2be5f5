"""Resume points inside an epoch, and every way a --resume or a bad dataset is refused before training."""
import csv
import json
import re

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from edgesam.cli.main import main
from edgesam.data.io import DataError
from edgesam.train.adapter import read_adapter
from edgesam.train import finetune
from edgesam.train.loop import Trainer
from edgesam.train.run import LAST, ResumeError
from tests.tolerances import RESUME_METRIC_ATOL
from tests.train.conftest import tiny_config

COMPARED = ("step", "train_loss", "val_miou", "val_dice", "lr")


def rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def assert_same_run(a, b):
    """Same figures every epoch and bit-identical trained weights. (These tiny random-init models
    predict empty masks, val mIoU 0, so the weights and the per-epoch losses carry the comparison.)"""
    ra, rb = rows(a), rows(b)
    assert len(ra) == len(rb) and ra
    assert ra[0]["epoch"] == rb[0]["epoch"] == "0"  # both scored their start before the first step
    for x, y in zip(ra, rb):
        for key in COMPARED:
            assert float(x[key]) == pytest.approx(float(y[key]), abs=RESUME_METRIC_ATOL, nan_ok=True), (key, x, y)
    trained = ra[1:]
    assert len({r["train_loss"] for r in trained}) == len(trained)  # the loss moved: the runs trained
    wa, wb = (read_adapter(d)[0] for d in (a, b))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_interrupted_inside_an_epoch_resumes_to_the_same_run(tiny_data, tmp_path, monkeypatch):
    # 4 training images, 3 per accumulated step: steps 1-2 in epoch 1 and 3-4 in epoch 2, the 2nd of each
    # partial. Dying inside step 4 resumes from step 3's checkpoint, in the middle of epoch 2.
    interrupt_at = 4
    kw = dict(strategy="lora", lora_dropout=0.1, epochs=2, batch_size=1, grad_accum=3, box_prob=0.5)
    finetune(tiny_config(tiny_data, tmp_path / "full", **kw), progress=False)

    real_step = Trainer.step_event

    def step_then_die(self, *args):
        if self.step + 1 == interrupt_at:  # dies inside this step: the last checkpoint is the step before
            raise KeyboardInterrupt
        return real_step(self, *args)

    monkeypatch.setattr(Trainer, "step_event", step_then_die)
    with pytest.raises(KeyboardInterrupt):
        finetune(tiny_config(tiny_data, tmp_path / "part", **kw), progress=False, checkpoint_every=1)
    monkeypatch.setattr(Trainer, "step_event", real_step)
    resumed = finetune(tiny_config(tiny_data, tmp_path / "part", **kw), progress=False, resume=True)
    assert_same_run(tmp_path / "full", tmp_path / "part")
    setup = [json.loads(x) for x in (tmp_path / "part/status.jsonl").read_text().splitlines() if '"setup"' in x]
    assert setup[-1]["figures"]["resumed_from_step"] == interrupt_at - 1
    assert resumed.steps == 4


def test_resume_refusals_and_a_complete_run(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, tmp_path / "run", max_steps=1)
    with pytest.raises(ResumeError, match="nothing to resume"):
        finetune(cfg, progress=False, resume=True)
    result = CliRunner().invoke(main, ["finetune", "--resume", "--out", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "nothing to resume" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "nowhere").exists()

    finetune(cfg, progress=False)
    with pytest.raises(ResumeError, match=r"other settings \(seed: 0 -> 1\)"):
        finetune(cfg.replace(seed=1), progress=False, resume=True)
    result = CliRunner().invoke(main, ["finetune", "--resume", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "nothing to resume: the run in" in result.output and "complete" in result.output


def test_finetune_refuses_a_bad_dataset_before_building_anything(tiny_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    victim = sorted((data / "crack/images").iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:60])  # truncated PNG
    with pytest.raises(DataError, match=f"{re.escape(str(victim))}.*edgesam data check"):
        finetune(tiny_config(data, tmp_path / "run"), progress=False)
    assert not (tmp_path / "run").exists()

    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "masks").mkdir()
    with pytest.raises(DataError, match="empty dataset"):
        finetune(tiny_config(empty, tmp_path / "run"), progress=False)

    blank = tmp_path / "blank"
    for sub in ("images", "masks"):
        (blank / sub).mkdir(parents=True)
    for i in range(3):
        Image.new("L", (32, 32), 90).save(blank / "images" / f"{i}.png")
        Image.new("L", (32, 32), 0).save(blank / "masks" / f"{i}.png")
    with pytest.raises(DataError, match="no mask holds an object"):
        finetune(tiny_config(blank, tmp_path / "run"), progress=False)


def test_memory_estimate_is_within_a_factor_of_1_5_of_the_peak(tiny_data, tmp_path):
    result = finetune(tiny_config(tiny_data, tmp_path, max_steps=2), progress=False)
    setup = json.loads((tmp_path / "status.jsonl").read_text().splitlines()[0])
    estimate = setup["figures"]["memory_estimate_gib"]["total"]
    assert 1 / 1.5 <= result.peak_mem_gib / estimate <= 1.5, (estimate, result.peak_mem_gib)
    assert (tmp_path / LAST).exists()


def test_auto_resume_continues_an_unfinished_run_only(tiny_data, tmp_path, monkeypatch):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    cfg = tiny_config(data, tmp_path / "run", epochs=4, max_steps=2)  # one step per epoch
    assert finetune(cfg, progress=False, resume="auto").steps == 2  # nothing there: a fresh run
    with pytest.raises(FileExistsError, match="holds a run already"):  # finished: not silently reused
        finetune(cfg, progress=False, resume="auto")
    assert finetune(cfg.replace(max_steps=3), progress=False, resume="auto").steps == 3  # unfinished: continued
    victim = sorted((data / "pit/images").iterdir())[0]
    (data / "pit/masks" / victim.name).unlink()
    victim.unlink()
    with pytest.raises(ResumeError, match="dataset .* changed"):
        finetune(cfg.replace(max_steps=4), progress=False, resume=True)


def test_a_run_recorded_before_a_setting_existed_resumes_at_that_settings_default():
    """An upgrade between a kill and its resume: the recorded config lacks a newer field, which ran at its
    default; only a real difference refuses the resume."""
    from edgesam.train import FinetuneConfig
    from edgesam.train.run import settings_changed

    current = FinetuneConfig(model="vit_t", init="random", data="d").to_dict()
    older = {k: v for k, v in current.items() if k != "max_forgetting"}
    assert settings_changed(older, current) == []
    assert settings_changed(older, {**current, "max_forgetting": 5.0}) == ["max_forgetting: 1.0 -> 5.0"]
    assert settings_changed({**older, "seed": 3}, current) == ["seed: 3 -> 0"]
