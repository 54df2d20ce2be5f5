"""Distillation parts: the student variant, the student's build, images, agreement counting, config and CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgesam.distill import DistillConfig
from edgesam.utils.config import ConfigError
from edgesam.distill.images import line_images, split_images
from edgesam.distill.models import build_student, load_teacher, same_decoder
from tests.distill.conftest import IMAGE_SIZE


def test_vit_n_is_registered_and_needs_at_most_half_of_vit_ts_flops():
    """At line-PC input sizes; at 1024 px global attention dominates both and the ratio falls to ~1.98."""
    from edgesam.compress import encoder_flops
    from edgesam.models import VARIANTS, arch_for

    assert "vit_n" in VARIANTS
    for size in (128, 256, 512):
        ratio = encoder_flops(arch_for("vit_t", size))["total"] / encoder_flops(arch_for("vit_n", size))["total"]
        assert ratio >= 2.0, (size, ratio)


def test_student_takes_the_teachers_grid_framing_and_decoder(teacher_path):
    teacher = load_teacher(teacher_path)
    teacher.arch.extra["framing"] = {"mode": "image"}  # what a framed teacher records
    student, arch = build_student(teacher, "vit_n")
    assert arch.image_size == teacher.image_size == IMAGE_SIZE
    assert arch.extra["framing"] == {"mode": "image"} and arch.extra["distilled_from"]["teacher_variant"] == "vit_t"
    assert same_decoder(student, teacher.model)
    x = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        assert student.image_encoder(x).shape == teacher.model.image_encoder(x).shape == (1, 256, 4, 4)
    again, _ = build_student(teacher, "vit_n")  # seeded: the untrained start is reproducible
    assert all(torch.equal(a, b) for a, b in zip(student.parameters(), again.parameters()))


def test_line_images_include_unlabelled_folders_and_flat_folders(line_dir, tmp_path):
    data = line_images(line_dir)
    assert {r.class_name for r in data.records} == {"crack", "pit", "scratch", "stain", "free"}
    assert sum(not r.labelled for r in data.records) == 3
    train, held = split_images(data, 0.3, 0)
    assert not {r.key for r in train.records} & {r.key for r in held.records}
    flat = tmp_path / "frames"
    flat.mkdir()
    for p in (line_dir / "free" / "images").iterdir():
        (flat / p.name).write_bytes(p.read_bytes())
    assert len(line_images(flat)) == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        line_images(empty)


def test_random_prompts_on_unlabelled_images_depend_on_the_image_alone(line_dir):
    from edgesam.distill.agreement import random_plan

    data = line_images(line_dir)
    plan = random_plan(data, "box", 0, 3, (0.1, 0.5))
    unlabelled = [r.key for r in data.records if not r.labelled]
    assert [item.key for item in plan] == unlabelled and all(not item.ground_truth for item in plan)
    assert plan.num_prompts == 3 * len(unlabelled)
    reordered = data.subset(list(reversed(range(len(data)))))
    again = {item.key: item.boxes for item in random_plan(reordered, "box", 0, 3, (0.1, 0.5))}
    assert all(np.array_equal(item.boxes, again[item.key]) for item in plan)
    points = random_plan(data, "point", 0, 2, (0.1, 0.5))
    assert all(item.points.shape == (2, 1, 2) and item.labels.shape == (2, 1) for item in points)


def test_agreement_scores_through_edgesam_eval_and_matches_its_task_miou(teacher_path, line_dir):
    """The teacher against itself agrees exactly on every prompt with a mask; its task mIoU is `edgesam eval`'s
    on the same held-out labelled images (which are finetune's validation split)."""
    from edgesam.distill.agreement import agreement
    from edgesam.eval import evaluate_model, scoring_set

    teacher = load_teacher(teacher_path)
    _, held = split_images(line_images(line_dir), 0.3, 0)
    assert {r.key for r in held.records if r.labelled} == {r.key for r in scoring_set(line_dir, "val", 0.3, 0).records}
    report = agreement(teacher.model, {"same": teacher.model}, held)
    reference = evaluate_model(teacher.model, scoring_set(line_dir, "val", 0.3, 0), "box", 0, boundary=False)
    assert report["task_objects"] == len(reference.records) > 0
    assert report["teacher_task_box_miou"] == pytest.approx(reference.overall["miou"], abs=1e-12)
    same = report["students"]["same"]
    assert same["task_box_miou"] == report["teacher_task_box_miou"]
    for kind in ("box", "point"):
        assert set(same[kind]["by_source"]) == {"labelled", "random"}
        figures = same[kind]
        assert figures["prompts"] == sum(s["prompts"] for s in figures["by_source"].values())
        # identical masks: IoU 1 wherever either mask has pixels, and the empty ones are counted, not scored
        assert figures["iou_vs_teacher"]["n"] == figures["prompts"] - figures["both_empty"] > 0
        assert figures["iou_vs_teacher"]["mean"] == 1.0 and figures["teacher_empty"] == figures["both_empty"]


@pytest.mark.slow
def test_agreement_counts_a_student_that_outputs_nothing(teacher_path, line_dir):
    """A student whose masks are all empty scores IoU 0 wherever the teacher answered, and is named."""
    import copy

    from edgesam.distill.agreement import agreement

    teacher = load_teacher(teacher_path)
    _, held = split_images(line_images(line_dir), 0.3, 0)
    blind = copy.deepcopy(teacher.model)
    with torch.no_grad():  # mask logits exactly 0: nothing above the threshold
        for mlp in blind.mask_decoder.output_hypernetworks_mlps:
            mlp.layers[-1].weight.zero_()
            mlp.layers[-1].bias.zero_()
    report = agreement(teacher.model, {"blind": blind}, held)
    box = report["students"]["blind"]["box"]
    assert box["student_empty"] == box["prompts"] > box["teacher_empty"]
    assert box["iou_vs_teacher"]["mean"] == 0.0 and report["students"]["blind"]["task_box_miou"] == 0.0


def test_config_names_the_bad_field():
    with pytest.raises(ConfigError, match="teacher"):
        DistillConfig(images="x").validate()
    with pytest.raises(ConfigError, match="loss"):
        DistillConfig(teacher="t.pth", images="x", loss="l1").validate()
    with pytest.raises(ConfigError, match="image_size"):
        DistillConfig(teacher="t.pth", images="x", image_size=100).validate()
    with pytest.raises(ConfigError, match="amp"):
        DistillConfig(teacher="t.pth", images="x", amp="fp16").validate()
    with pytest.raises(ConfigError, match="unknown fields"):
        DistillConfig.from_dict({"teacher": "t.pth", "lr_encoder": 1.0})
    cfg = DistillConfig(teacher="t.pth", images="x", out="a/student.pth")
    assert cfg.run_path.name == "student_distill" and cfg.cache_path == cfg.run_path / "teacher_cache"
    assert DistillConfig.from_dict(cfg.to_dict()) == cfg


def test_cli_prints_its_config_and_names_missing_inputs():
    from edgesam.cli.main import main

    runner = CliRunner()
    printed = runner.invoke(main, ["distill", "--print-config", "--student", "vit_t", "--loss", "mse+cos"])
    assert printed.exit_code == 0 and "student: vit_t" in printed.output and "loss: mse+cos" in printed.output
    missing = runner.invoke(main, ["distill", "--images", "somewhere"])
    assert missing.exit_code == 2 and "teacher" in missing.output


@pytest.mark.slow
def test_compare_distils_each_student_from_one_teacher_cache(teacher_path, line_dir, tmp_path):
    import json

    from edgesam.distill import compare_students
    from tests.distill.conftest import tiny_config

    cfg = tiny_config(teacher_path, line_dir, tmp_path, run_dir=str(tmp_path / "cmp"), epochs=1, views_per_image=1,
                      eval_max_images=1)
    rows = compare_students(cfg, ["vit_n", "vit_t"], progress=False, log=lambda m: None)
    assert [r["student"] for r in rows] == ["vit_n", "vit_t"]
    assert rows[0]["encoder_gflops"] < rows[1]["encoder_gflops"]
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| vit_n |" in table and "| vit_t |" in table and (tmp_path / "cmp" / "comparison.png").is_file()
    second = [json.loads(line) for line in (tmp_path / "cmp" / "vit_t" / "status.jsonl").read_text().splitlines()]
    ready = [e for e in second if e["state"] == "cache" and "ready" in e["message"]][0]
    assert ready["figures"]["computed"] == 0 and ready["figures"]["reused"] > 0  # the teacher ran once
    with pytest.raises(ConfigError, match="vit_q"):
        compare_students(cfg, ["vit_q"], progress=False)


@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_the_students_steps_run_under_the_asked_autocast_and_validation_does_not(amp):
    import torch

    from edgesam.distill.train import Loop
    from edgesam.train.loop import autocast_context

    seen = {"train": [], "validate": []}

    class Probe:  # records whether autocast is on where the objective runs the student
        name, stream = "embed", 1

        def parameter_groups(self, student, lr):
            return [{"params": list(student.parameters()), "lr": lr}]

        def loss(self, student, items):
            seen["train"].append(torch.is_autocast_enabled("cpu"))
            out = student(torch.stack(items))
            return out.float().pow(2).mean(), {"dtype": str(out.dtype)}

        def validate(self, student, items, batch):
            seen["validate"].append(torch.is_autocast_enabled("cpu"))
            return {"val_mse": 1.0}

        score = staticmethod(lambda val: -val["val_mse"])

    student = torch.nn.Linear(4, 4)
    cfg = type("Cfg", (), {"amp": amp})()
    loop = Loop(student, Probe(), list(range(4)), lambda u: torch.randn(4), [0], epochs=1, batch_size=2, lr=1e-3,
                weight_decay=0.0, warmup_steps=0, grad_clip=1.0, max_steps=None, seed=0,
                autocast=autocast_context(cfg, torch.device("cpu"))[0])
    events = list(loop.run())
    steps = [e for e in events if e["state"] == "step"]
    assert seen["train"] == [amp == "bf16"] * 2 and seen["validate"] == [False]
    assert steps[0]["figures"]["dtype"] == ("torch.bfloat16" if amp == "bf16" else "torch.float32")
    assert student.weight.dtype == torch.float32  # master weights stay fp32
