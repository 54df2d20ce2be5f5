"""finetune end to end on a tiny run: files, labels, resume equivalence, seeded reproducibility."""
import csv
import json

import pytest

from edgesam.train import finetune
from edgesam.train.run import LAST
from tests.tolerances import RESUME_METRIC_ATOL
from tests.train.conftest import tiny_config


def _rows(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_resume_matches_uninterrupted_run(tiny_data, tmp_path):
    kw = dict(strategy="lora", lora_dropout=0.1, epochs=2, batch_size=2, box_prob=0.5)  # dropout: torch RNG matters
    full = finetune(tiny_config(tiny_data, tmp_path / "full", **kw), progress=False)
    part = tmp_path / "part"
    finetune(tiny_config(tiny_data, part, **kw), progress=False, stop_after_epochs=1)  # as if killed
    assert [r["epoch"] for r in _rows(part)] == ["0", "1"]  # the start, then one trained epoch
    with pytest.raises(FileExistsError, match="resume"):
        finetune(tiny_config(tiny_data, part, **kw), progress=False)
    resumed = finetune(tiny_config(tiny_data, part, **kw), progress=False, resume=True)
    a, b = _rows(tmp_path / "full"), _rows(part)
    assert len(a) == len(b) == 3
    for ra, rb in zip(a, b):
        for key in ("train_loss", "val_miou", "val_dice", "lr"):
            assert float(ra[key]) == pytest.approx(float(rb[key]), abs=RESUME_METRIC_ATOL, nan_ok=True), (key, ra, rb)
    assert full.steps == resumed.steps and full.best_miou == pytest.approx(resumed.best_miou, abs=RESUME_METRIC_ATOL)


def test_run_dir_contents_and_random_init_label(tiny_data, tmp_path):
    res = finetune(tiny_config(tiny_data, tmp_path, strategy="decoder", max_steps=2), progress=False)
    for name in ("config.yaml", "metrics.csv", "status.jsonl", "curves.png", LAST, "best.pt",
                 "adapter/edgesam_weights.safetensors", "adapter/edgesam_adapter.json", "base.pth"):
        assert (tmp_path / name).exists(), name
    lines = [json.loads(x) for x in (tmp_path / "status.jsonl").read_text().splitlines()]
    assert {"setup", "start", "step", "epoch", "done"} <= {x["state"] for x in lines}
    assert all(x["init"] == "random" for x in lines)
    assert "memory estimate" in lines[0]["message"]
    assert _rows(tmp_path)[0]["init"] == "random"
    assert not (tmp_path / "adapter/adapter_config.json").exists()  # no LoRA layers: not a peft adapter
    meta = json.loads((tmp_path / "adapter/edgesam_adapter.json").read_text())
    assert meta["init"] == "random" and meta["arch"]["extra"]["init"] == "random" and len(meta["base_sha256"]) == 64
    assert "init: random" in (tmp_path / "config.yaml").read_text()
    assert res.trainable_params > 0 and res.adapter_bytes == (tmp_path / "adapter/edgesam_weights.safetensors").stat().st_size


def test_compare_writes_one_table(tiny_data, tmp_path):
    from edgesam.train import compare_strategies

    table = compare_strategies(tiny_config(tiny_data, tmp_path, max_steps=1), ["decoder", "lora"], progress=False)
    assert [r["strategy"] for r in table.rows] == ["decoder", "lora"]
    assert table.rows[0]["trainable_params"] < table.rows[1]["trainable_params"]  # lora adds adapters to the decoder
    for name in ("comparison.md", "comparison.json", "comparison.png"):
        assert (tmp_path / name).exists()
    assert "init: random" in (tmp_path / "comparison.md").read_text()
