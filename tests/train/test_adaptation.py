"""Adapting a model never ends below its start unnoticed: epoch 0 scores the start, a run in which no epoch
beats it keeps the start (and says so, up to merge); replay mixes earlier data into every batch; the
mask-grid ceiling on hand-made masks."""
import csv
import json

import numpy as np
import pytest
import torch

from edgesam.data import synthesize_dataset
from edgesam.eval.ceiling import Grid, object_ceiling
from edgesam_runtime.roi import InputFraming
from edgesam.train import finetune, merge_run
from edgesam.train.loop import epoch_order, replay_slots
from tests.train.conftest import tiny_config

ROI = InputFraming(mode="roi", roi_margin=1.5, dense_box=True)


def _rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def _events(run_dir):
    return [json.loads(x) for x in (run_dir / "status.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_epoch_zero_is_the_start_scored_before_any_step(tiny_data, tmp_path):
    from edgesam.eval import build_plan, evaluate, model_adapter, train_val
    from edgesam.models import create_model

    result = finetune(tiny_config(tiny_data, tmp_path / "run", strategy="full", max_steps=2), progress=False)
    rows = _rows(tmp_path / "run")
    assert rows[0]["epoch"] == "0" and rows[0]["step"] == "0" and rows[1]["epoch"] == "1"
    # the figure is the base model's, scored as eval scores it
    _, val = train_val(__import__("edgesam.data", fromlist=["load_dataset"]).load_dataset(tiny_data), 0.2, 0)
    plan = build_plan(val, "box", 0, max_images=2)
    base = create_model(checkpoint=tmp_path / "run/base.pth")
    expected = evaluate(model_adapter(base, "cpu"), plan, "start", boundary=False).overall["miou"]
    assert float(rows[0]["val_miou"]) == pytest.approx(expected, abs=1e-6)
    assert result.start_miou == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_a_run_that_never_beats_its_start_keeps_it_and_says_so(tiny_data, tmp_path, monkeypatch):
    """Validation scores that only fall: best, the adapter and the merged checkpoint are the start's."""
    import edgesam.train.run as run_module
    from edgesam.models import create_model

    falling = iter([0.6, 0.5, 0.4, 0.3])

    def fake_validator(*args, **kwargs):
        return lambda sam: {"miou": next(falling), "dice": 0.5, "per_class": {}}

    monkeypatch.setattr(run_module, "make_validator", fake_validator)
    run = tmp_path / "run"
    result = finetune(tiny_config(tiny_data, run, strategy="full", epochs=2, lr_encoder=1e-2, lr_decoder=1e-2),
                      progress=False)
    assert result.kept_start and result.best_epoch == 0 and result.start_miou == 0.6
    assert [r["epoch"] for r in _rows(run)] == ["0", "1", "2"]
    done = [e for e in _events(run) if e["state"] == "done"][0]
    assert done["message"].startswith("NO GAIN") and done["figures"]["kept_start"] is True
    assert "val mIoU 0.6000 before training, best epoch 0.5000" in done["message"]
    assert torch.load(run / "best.pt", weights_only=True)["epoch"] == 0
    assert json.loads((run / "adapter/edgesam_adapter.json").read_text())["epoch"] == 0
    report = merge_run(run, tmp_path / "merged.pth")
    assert report.kept_start
    base, merged = (create_model(checkpoint=p).state_dict() for p in (run / "base.pth", tmp_path / "merged.pth"))
    assert base.keys() == merged.keys() and all(torch.equal(base[k], merged[k]) for k in base)


@pytest.mark.slow
def test_a_run_that_beats_its_start_reports_the_gain(tiny_data, tmp_path, monkeypatch):
    import edgesam.train.run as run_module

    rising = iter([0.2, 0.3, 0.5])
    monkeypatch.setattr(run_module, "make_validator",
                        lambda *a, **k: (lambda sam: {"miou": next(rising), "dice": 0.5, "per_class": {}}))
    result = finetune(tiny_config(tiny_data, tmp_path / "run", strategy="decoder", epochs=2), progress=False)
    assert not result.kept_start and result.best_epoch == 2 and result.best_miou == 0.5
    assert "+0.3000 over the start's 0.2000" in [e for e in _events(tmp_path / "run") if e["state"] == "done"][0]["message"]


def test_replay_fills_its_share_of_every_batch_and_the_new_data_comes_once():
    n, replay, batch = 10, 7, 4
    order = epoch_order(n, seed=1, epoch=0, replay=replay, batch_size=batch, replay_share=0.5)
    slots = replay_slots(batch, 0.5)
    assert slots == 2
    batches = [order[i:i + batch] for i in range(0, len(order), batch)]
    assert sorted(i for i in order if i < n) == list(range(n))  # each new item once
    for b in batches[:-1]:
        assert sum(i >= n for i in b) == slots
    assert all(n <= i < n + replay for i in order if i >= n)
    assert epoch_order(n, 1, 0, replay=replay, batch_size=batch, replay_share=0.5) == order  # seeded
    assert epoch_order(n, 1, 1, replay=replay, batch_size=batch, replay_share=0.5) != order  # reshuffled per epoch


@pytest.mark.slow
def test_finetune_with_replay_trains_on_both_and_scores_old_classes_beside_new(tmp_path):
    new = synthesize_dataset(tmp_path / "new", count=10, seed=1, size=64, classes=("crack", "stain"))
    old = synthesize_dataset(tmp_path / "old", count=10, seed=2, size=64, classes=("pit", "scratch"))
    run = tmp_path / "run"
    result = finetune(tiny_config(new, run, strategy="decoder", epochs=1, batch_size=4, val_max_images=None,
                                  replay=f"{old}:0.5"), progress=False)
    setup = [e for e in _events(run) if e["state"] == "setup"][0]["message"]
    assert f"replayed from {old} (50% of each batch)" in setup
    per_class = result.history[-1]["per_class"]
    assert {"crack", "stain"} <= set(per_class) and {"pit", "scratch"} <= set(per_class)
    assert result.class_groups == {"new": ["crack", "stain"], "replayed": ["pit", "scratch"]}
    states = [e["state"] for e in _events(run)]
    assert states[-2:] == ["classes", "done"]  # the outcome stays the last line
    classes = _events(run)[-2]["message"]
    assert "new classes (crack, stain)" in classes and "replayed classes (pit, scratch)" in classes
    recorded = json.loads((run / "adapter/edgesam_adapter.json").read_text())["arch"]["extra"]["trained_on"]
    assert recorded[-2:] == [str(new.resolve()), str(old.resolve())]


@pytest.mark.parametrize("value, message", [("d:1.5", "fraction"), ("d:0", "fraction"), ("", "replay")])
def test_replay_fraction_is_checked(value, message):
    from edgesam.train import FinetuneConfig
    from edgesam.utils.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        FinetuneConfig(model="vit_t", init="random", replay=value)


def test_ceiling_of_hand_made_masks():
    """A 1-px line 60 px long: its 90 px crop, resized to 128 px, makes it 1.4 px wide, under half of each
    4-px cell of the decoder's 32x32 grid: that grid draws nothing (IoU 0); the crop's own 128x128 grid
    draws it. A 40x40 square fills whole cells: the decoder's grid draws it all but its edge."""
    line = np.zeros((200, 200), bool)
    line[100, 70:130] = True
    square = np.zeros((200, 200), bool)
    square[80:120, 80:120] = True
    decoder, refined = Grid(ROI, 128, 32), Grid(ROI, 128, 128)
    assert object_ceiling(line, decoder) == 0.0
    assert object_ceiling(line, refined) >= 0.5
    assert object_ceiling(square, decoder) >= 0.95
    with pytest.raises(ValueError, match="empty"):
        object_ceiling(np.zeros((10, 10), bool), decoder)


def test_a_replay_run_that_kept_its_start_still_shows_the_trade_training_made():
    from edgesam.train.run import FinetuneResult, groups_message

    nan = float("nan")
    history = [{"epoch": 0, "val_miou": 0.70, "per_class": {"fray": 0.60, "crack": 0.80}},
               {"epoch": 1, "val_miou": nan, "per_class": {}},
               {"epoch": 2, "val_miou": 0.69, "per_class": {"fray": 0.70, "crack": 0.68}}]
    result = FinetuneResult("r", "lora", "pretrained", 0.70, 0.8, 0.70, True, 0, 1, 1.0, 1.0, 1.0, 1, 2, 2,
                            history=history, class_groups={"new": ["fray"], "replayed": ["crack"]})
    message = groups_message(result)
    assert "best trained epoch (2; not kept)" in message
    assert "new classes (fray) 0.6000 -> 0.7000 (+0.1000)" in message
    assert "replayed classes (crack) 0.8000 -> 0.6800 (-0.1200)" in message


def test_with_replay_epochs_are_ranked_by_both_groups_and_forgetting_beyond_the_limit_is_never_kept():
    """Few new objects beside many old ones: the object-weighted val mIoU falls although the new class gains
    and the old ones keep within a point; the rule ranks by the two groups' mean and bars forgetting."""
    from edgesam.train.selection import EpochRule

    groups = {"new": ["fray"], "replayed": ["crack", "uneven"]}
    start = {"epoch": 0, "val_miou": 0.775, "per_class": {"fray": 0.70, "crack": 0.66, "uneven": 0.84}}
    within = {"epoch": 5, "val_miou": 0.773, "per_class": {"fray": 0.77, "crack": 0.655, "uneven": 0.835}}
    forgets = {"epoch": 10, "val_miou": 0.772, "per_class": {"fray": 0.90, "crack": 0.63, "uneven": 0.82}}
    rule = EpochRule(groups, forget_limit=0.01)
    assert rule.score(within) == pytest.approx((0.77 + (0.655 + 0.835) / 2) / 2)
    assert rule.eligible(within, start) and not rule.eligible(forgets, start)
    assert rule.score(forgets) > rule.score(within)  # the higher score is still barred
    assert rule.best([start, within, forgets]) is within
    assert rule.best([start, forgets]) is start  # only forgetting on offer: the start is kept
    plain = EpochRule({"new": ["fray"], "replayed": []})  # no replay: val mIoU over every object
    assert plain.best([start, within, forgets]) is start
    assert "at most 1 point on the replayed" in rule.description and plain.description == "val mIoU"

