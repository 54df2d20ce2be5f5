"""bench can score on the validation split alone, so a fine-tuned model is not scored on its training images."""
import pytest

from edgesam.bench.config import BenchConfig
from edgesam.utils.config import ConfigError
from edgesam.bench.run import bench_plan
from edgesam.data import load_dataset, split_by_stem, synthesize_dataset


def test_val_plan_draws_only_validation_images(tmp_path):
    data = synthesize_dataset(tmp_path / "d", count=24, seed=3, size=96)
    train, val = split_by_stem(load_dataset(data), 0.25, 7)
    val_stems = {r.stem for r in val.records}  # plan names are "class/stem"
    config = dict(bundle="b", data=str(data), max_images=100)
    plan = bench_plan(BenchConfig(**config, split="val", val_fraction=0.25, split_seed=7))
    stems = {item.key.split("/")[1] for item in plan}
    assert stems and stems <= val_stems and not stems & {r.stem for r in train.records}
    assert len(bench_plan(BenchConfig(**config))) > len(plan)  # "all" sees the training images too


def test_bad_split_is_refused():
    with pytest.raises(ConfigError, match="split"):
        BenchConfig(bundle="b", data="d", split="train")
