"""FinetuneConfig validation and YAML round trip; CLI --print-config, flags over spec, merge/eval wiring."""
import pytest
import yaml
from click.testing import CliRunner

from edgesam.cli.main import main
from edgesam.train import FinetuneConfig
from edgesam.utils.config import ConfigError


def test_yaml_round_trip(tmp_path):
    cfg = FinetuneConfig(model="vit_t", init="random", strategy="partial", lora_blocks=[1, 2], epochs=3)
    path = tmp_path / "spec.yaml"
    path.write_text(cfg.to_yaml())
    assert FinetuneConfig.from_yaml(path) == cfg
    assert FinetuneConfig.from_yaml(path, epochs=7, seed=None).epochs == 7  # None = flag not given


@pytest.mark.parametrize("changes, field", [
    ({"strategy": "adapterz"}, "strategy"), ({"epochs": 0}, "epochs"), ({"lora_dropout": 1.5}, "lora_dropout"),
    ({"image_size": 100}, "image_size"), ({"init": "pretrained", "checkpoint": None}, "checkpoint"),
    ({"strategy": "decoder", "decoder_mode": "frozen"}, "decoder_mode"), ({"val_fraction": 1.0}, "val_fraction"),
])
def test_validation_names_the_field(changes, field):
    base = dict(model="vit_t", init="random")
    with pytest.raises(ConfigError, match=field):
        FinetuneConfig(**{**base, **changes})


def test_unknown_field_in_yaml_names_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: vit_t\ninit: random\nepoch: 3\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*epoch"):
        FinetuneConfig.from_yaml(path)


def test_cli_print_config_and_overrides(tmp_path):
    r = CliRunner().invoke(main, ["finetune", "--print-config"])
    assert r.exit_code == 0, r.output
    printed = yaml.safe_load(r.output)
    # the variant is the checkpoint's own unless given (a vit_t checkpoint needs no --model vit_t)
    assert printed["strategy"] == "lora" and printed["model"] is None and "augment" in printed
    r = CliRunner().invoke(main, ["finetune", "--init", "random", "--print-config"])
    assert yaml.safe_load(r.output)["model"] == "vit_b"
    spec = tmp_path / "s.yaml"
    spec.write_text("model: vit_t\ninit: random\nepochs: 2\n")
    r = CliRunner().invoke(main, ["finetune", "-c", str(spec), "--epochs", "5", "--strategy", "full", "--print-config"])
    out = yaml.safe_load(r.output)
    assert (out["epochs"], out["strategy"], out["init"]) == (5, "full", "random")
    r = CliRunner().invoke(main, ["finetune", "-c", str(spec), "--lora-dropout", "3", "--print-config"])
    assert r.exit_code != 0 and "lora_dropout" in r.output


def test_cli_help_shows_examples():
    for verb in ("finetune", "eval", "merge"):
        r = CliRunner().invoke(main, [verb, "--help"])
        assert r.exit_code == 0 and "Example" in r.output, verb


def test_cli_merge_reports_missing_adapter(tmp_path):
    r = CliRunner().invoke(main, ["merge", str(tmp_path), "--out", str(tmp_path / "m.pth")])
    assert r.exit_code != 0 and "edgesam_adapter.json" in r.output


@pytest.mark.slow
def test_cli_eval_side_by_side(tiny_data, tmp_path):
    import json

    import torch

    from edgesam.models import arch_for, build_sam, save_checkpoint

    arch = arch_for("vit_t", 64)
    for name, seed in (("a.pth", 0), ("b.pth", 1)):
        torch.manual_seed(seed)
        save_checkpoint(build_sam(arch), tmp_path / name, arch)
    r = CliRunner().invoke(main, ["eval", "--checkpoint", str(tmp_path / "b.pth"), "--base", str(tmp_path / "a.pth"),
                                  "--data", str(tiny_data), "--split", "val", "--out", str(tmp_path / "ev")])
    assert r.exit_code == 0, r.output
    cmp = json.loads((tmp_path / "ev/eval_comparison.json").read_text())
    base = json.loads((tmp_path / "ev/eval_base.json").read_text())
    tuned = json.loads((tmp_path / "ev/eval_tuned.json").read_text())
    gain = cmp["groups"]["all"]["miou"]["gain"]
    assert gain == pytest.approx(tuned["overall"]["miou"] - base["overall"]["miou"])
    assert "mIoU base" in r.output and set(base["per_size"]) <= {"small", "medium", "large"}


def test_cli_run_without_checkpoint_is_a_usage_error(tiny_data):
    r = CliRunner().invoke(main, ["finetune", "--model", "vit_b", "--data", str(tiny_data)])
    assert r.exit_code == 2 and "checkpoint" in r.output
