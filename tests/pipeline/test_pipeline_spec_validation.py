"""A pipeline spec is checked whole when it is loaded: every bad value, in any stage's section, is one
`Error: SPEC: FIELD: expected ...` line before the first stage runs (nothing is written to `out`)."""
from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from edgesam.cli.main import main
from edgesam.pipeline import PipelineSpec, StageFailed, run_pipeline
from edgesam.pipeline.runner import Stage, run_stages
from edgesam.pipeline.stages import build_stages
from edgesam.utils.config import ConfigError


def good_spec(out) -> dict:
    """A valid spec as `edgesam demo --print-spec` writes it, sized so nothing would train long."""
    return {
        "out": str(out), "model": "vit_t", "image_size": 64, "synth": {"count": 4, "size": 80, "free": 2, "seed": 0},
        "val_fraction": 0.25, "finetune": {"recipe": "sam", "strategy": "full", "epochs": 1, "batch_size": 2,
                                           "max_steps": 1, "warmup_steps": 1},
        "prune": {"head_ratio": 0.34, "mlp_ratio": 0.5}, "recover_epochs": 1, "measure_latency": False,
        "export": {"precisions": ["fp32"], "calib_max_images": 2}, "bench": {"max_images": 2},
    }


# (case, changes to the good spec, the field the error must name)
BAD = [
    ("out int", {"out": 5}, "out"),
    ("out null", {"out": None}, "out"),
    ("out list", {"out": ["a"]}, "out"),
    ("out empty", {"out": ""}, "out"),
    ("checkpoint int", {"checkpoint": 5}, "checkpoint"),
    ("data int", {"data": 5}, "data"),
    ("synth int", {"synth": 5}, "synth"),
    ("synth size text", {"synth": {"size": "big"}}, "synth.size"),
    ("synth unknown", {"synth": {"sise": 80}}, "synth"),
    ("val_fraction text", {"val_fraction": "x"}, "val_fraction"),
    ("val_fraction 1", {"val_fraction": 1.0}, "val_fraction"),
    ("model int", {"model": 5}, "model"),
    ("model unknown", {"model": "vit_q"}, "model"),
    ("image_size", {"image_size": 50}, "image_size"),
    ("seed", {"seed": -1}, "seed"),
    ("recover_epochs text", {"recover_epochs": "x"}, "recover_epochs"),
    ("measure_latency text", {"measure_latency": "yes please"}, "measure_latency"),
    ("min_iou", {"min_iou": 5}, "min_iou"),
    ("min_iou text", {"min_iou": "high"}, "min_iou"),
    ("max_latency_ms", {"max_latency_ms": 0}, "max_latency_ms"),
    ("finetune int", {"finetune": 5}, "finetune"),
    ("finetune epochs", {"finetune": {"epochs": 0}}, "finetune.epochs"),
    ("finetune lr text", {"finetune": {"lr_encoder": "fast"}}, "finetune.lr_encoder"),
    ("finetune unknown", {"finetune": {"epochz": 1}}, "finetune: unknown fields ['epochz']"),
    ("finetune out", {"finetune": {"out": "elsewhere"}}, "finetune.out"),
    ("finetune model", {"finetune": {"model": "vit_q"}}, "finetune.model"),
    ("prune head_ratio", {"prune": {"head_ratio": 2}}, "prune.head_ratio"),
    ("prune unknown", {"prune": {"heads": 0.5}}, "prune: unknown fields ['heads']"),
    ("prune list", {"prune": [0.5]}, "prune"),
    ("export precisions", {"export": {"precisions": ["fp64"]}}, "export.precisions"),
    ("export opset text", {"export": {"opset": "new"}}, "export.opset"),
    ("bench max_images", {"bench": {"max_images": -1}}, "bench.max_images"),
    ("bench max_images text", {"bench": {"max_images": "x"}}, "bench.max_images"),
    ("bench prompt", {"bench": {"prompt": "scribble"}}, "bench.prompt"),
    ("bench unknown", {"bench": {"max_imgs": 2}}, "bench: unknown fields ['max_imgs']"),
    ("bench floor", {"bench": {"min_iou": 0.5}}, "bench.min_iou"),
    ("distill student", {"prune": None, "distill": {"student": "vit_q"}}, "distill.student"),
    ("distill epochs", {"prune": None, "distill": {"epochs": 0}}, "distill.epochs"),
    ("distill with prune", {"distill": {"student": "vit_n"}}, "distill"),
]


@pytest.mark.parametrize("changes, field", [(c, f) for _, c, f in BAD], ids=[name for name, _, _ in BAD])
def test_a_bad_spec_is_one_error_naming_file_and_field_before_any_stage(tmp_path, changes, field):
    out = tmp_path / "out"
    spec = good_spec(out)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict) and key != "finetune":
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError) as caught:  # what `edgesam pipeline` loads; a ConfigError is a ValueError
        PipelineSpec.from_yaml(path)
    assert str(caught.value).startswith(f"{path}: {field}"), str(caught.value)
    result = CliRunner().invoke(main, ["pipeline", "-c", str(path)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith(f"Error: {path}: {field}") and "internal error" not in lines[0], lines[0]
    assert not out.exists() and not (tmp_path / "5").exists()  # no stage ran, nothing was written


def test_the_good_spec_loads_and_names_every_stage(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(good_spec(tmp_path / "out")))
    spec = PipelineSpec.from_yaml(path)
    assert [s.name for s in build_stages(spec)] == ["data", "finetune", "merge", "prune", "export", "bench", "report"]
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(main, ["demo", "--print-spec"])
    (tmp_path / "demo.yaml").write_text(result.output)
    assert PipelineSpec.from_yaml(tmp_path / "demo.yaml").bench == {"max_images": 12}


def test_a_spec_changed_after_it_was_made_is_checked_before_the_first_stage(tmp_path):
    spec = PipelineSpec(**good_spec(tmp_path / "out"))
    spec.bench = {"max_images": -1}  # bypasses __post_init__
    with pytest.raises(ConfigError, match=r"^bench\.max_images: expected a positive integer, got -1"):
        run_pipeline(spec, progress=False, echo=lambda m: None)
    assert not (tmp_path / "out" / "status.jsonl").exists() and not (tmp_path / "out" / "data").exists()


def test_a_stage_whose_inputs_cannot_be_described_fails_by_its_name(tmp_path):
    def broken(ctx):
        raise ConfigError("max_images: expected a positive integer, got -1")

    stages = [Stage("bench", run=lambda ctx: {}, fingerprint=broken)]
    with pytest.raises(StageFailed, match=r"^stage 'bench' failed: ConfigError: max_images"):
        run_stages(stages, tmp_path, {}, echo=lambda m: None)
