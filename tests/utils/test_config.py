"""The one config base: every config of the toolchain round-trips through YAML, flags win over the file,
and every bad value is one ConfigError naming the file (or flags) and the field."""
from __future__ import annotations

import re

import pytest

from edgesam.bench.config import BenchConfig
from edgesam.compress.config import PruneConfig, PruneJob, RecoveryConfig
from edgesam.data import AugmentConfig
from edgesam.distill import DistillConfig
from edgesam.export import ExportConfig
from edgesam.pipeline import PipelineSpec
from edgesam.train import FinetuneConfig
from edgesam.utils.config import Config, ConfigError, check_number

CONFIGS = [
    FinetuneConfig(model="vit_t", init="random", data="d", epochs=3),
    DistillConfig(teacher="t.pth", images="d", box_side=(0.1, 0.4)),
    ExportConfig(precisions=("fp32", "int8"), calib_data="c"),
    PruneConfig(ratio=0.25, remove_blocks=(3, 1)),
    RecoveryConfig(epochs=2),
    BenchConfig(bundle="b", data="d", graph_sets=("fp32",), backends="onnxruntime,openvino"),
    PipelineSpec(prune=None, distill={"student": "vit_n"}),
    AugmentConfig(scale=(0.8, 1.2)),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_every_config_round_trips_through_yaml(config, tmp_path):
    assert isinstance(config, Config)
    path = tmp_path / "spec.yaml"
    path.write_text(config.to_yaml())
    again = type(config).from_yaml(path)
    assert again == config and again.to_dict() == config.to_dict()


def test_flags_win_over_the_file_and_none_means_not_given(tmp_path):
    path = tmp_path / "export.yaml"
    path.write_text("max_boxes: 8\nopset: 18\n")
    config = ExportConfig.load(path, max_boxes=4, opset=None)
    assert (config.max_boxes, config.opset) == (4, 18)
    assert ExportConfig.load(None, max_boxes=2, opset=None).max_boxes == 2


def test_errors_name_the_file_and_the_field(tmp_path):
    path = tmp_path / "distill.yaml"
    path.write_text("teacher: t.pth\nepochz: 3\n")
    with pytest.raises(ConfigError, match=r"distill\.yaml: unknown fields \['epochz'\].*edgesam distill --print-config"):
        DistillConfig.from_yaml(path)
    path = tmp_path / "finetune.yaml"
    path.write_text("model: vit_t\ninit: random\nepochs: 0\n")
    with pytest.raises(ConfigError, match=r"finetune\.yaml: epochs: expected an integer >= 1, got 0"):
        FinetuneConfig.from_yaml(path)
    with pytest.raises(ConfigError, match=r"^flags: max_boxes: expected an integer from 1 to 65536"):
        ExportConfig.load(None, max_boxes=0)
    with pytest.raises(ConfigError, match=r"^prune config: ratio: expected a fraction in \[0, 1\), got 1.5"):
        PruneConfig.from_dict({"ratio": 1.5})


def test_number_check_wording():
    for kwargs, expected in (({"low": 0.0}, ">= 0"), ({"high": 1.0}, "<= 1"), ({"low": 0.0, "high": 1.0}, "in [0, 1]")):
        with pytest.raises(ConfigError, match=re.escape(f"x: expected a number {expected}, got True")):
            check_number("x", True, **kwargs)
