"""A finetune killed with SIGKILL at a random step, in its first epoch and again in a later one, and then
resumed, ends exactly where a run that was never interrupted ends (same steps, losses, mIoU)."""
import json
import random

import pytest
import yaml

from edgesam.data import synthesize_dataset
from edgesam.train import finetune
from tests.killing import edgesam_command, kill_when
from tests.train.conftest import tiny_config
from tests.train.test_train_resume import assert_same_run

# 12 images -> 8 train / 4 val; batch 2 -> 4 steps per epoch, 8 in all. Dropout: the torch RNG matters.
SETTINGS = dict(strategy="lora", lora_dropout=0.1, epochs=2, batch_size=2, box_prob=0.5)
STEPS_PER_EPOCH = 4


def events(run_dir):
    path = run_dir / "status.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def reached(run_dir, step):
    return lambda: any(e["state"] == "step" and e["figures"]["step"] >= step for e in events(run_dir))


@pytest.mark.slow
def test_killed_twice_then_resumed_equals_uninterrupted(tmp_path):
    data = synthesize_dataset(tmp_path / "data", count=12, seed=0, size=64)
    finetune(tiny_config(data, tmp_path / "uninterrupted", **SETTINGS), progress=False)

    run = tmp_path / "killed"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(tiny_config(data, run, **SETTINGS).to_dict()))
    first = random.randint(2, STEPS_PER_EPOCH - 1)  # after step 1, whose checkpoint is the first resume point
    kill_when(edgesam_command("finetune", "-c", str(spec), "--checkpoint-every", "1"), reached(run, first),
              tmp_path / "first.log")
    assert not any(e["state"] == "epoch" for e in events(run)), f"killed after step {first}: not in epoch 1"

    later = random.randint(STEPS_PER_EPOCH + 1, 2 * STEPS_PER_EPOCH - 1)
    kill_when(edgesam_command("finetune", "--resume", "--out", str(run), "--checkpoint-every", "1"),
              reached(run, later), tmp_path / "second.log")
    assert [e["state"] for e in events(run)].count("epoch") == 1, f"killed after step {later}: not in epoch 2"

    finetune(tiny_config(data, run, **SETTINGS), progress=False, resume=True)
    assert_same_run(tmp_path / "uninterrupted", run)
    resumed = [e["figures"]["resumed_from_step"] for e in events(run) if e["state"] == "setup"]
    assert resumed[0] is None and 1 <= resumed[1] <= first and STEPS_PER_EPOCH <= resumed[2] <= later, resumed
