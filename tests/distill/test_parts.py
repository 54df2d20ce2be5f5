"""Distillation parts: the student variant, the student's build, images, agreement counting, config and CLI."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgesam.distill import DistillConfig, DistillConfigError
from edgesam.distill.agreement import _empty_tally, _tally
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


def test_agreement_skips_empty_teacher_masks_and_counts_them():
    t = np.zeros((3, 8, 8), bool)
    s = np.zeros((3, 8, 8), bool)
    t[0, :4], s[0, :2] = True, True  # IoU 0.5
    t[1, :4] = True  # the student misses it: IoU 0, counted as empty-where-the-teacher-is-not
    # prompt 2: both empty -- would be IoU 1.0, must not count
    tally = _empty_tally()
    _tally(tally, t, s)
    assert tally["ious"] == [0.5, 0.0]
    assert (tally["teacher_empty"], tally["student_empty"], tally["prompts"]) == (1, 1, 3)


def test_task_miou_equals_edgesam_eval_on_the_same_images(teacher_path, line_dir):
    from edgesam.distill.agreement import agreement
    from edgesam.distill.images import labelled_part
    from edgesam.evaluate import evaluate

    teacher = load_teacher(teacher_path)
    _, held = split_images(line_images(line_dir), 0.3, 0)
    report = agreement(teacher.model, {"same": teacher.model}, held)
    assert report["task_objects"] > 0
    reference = evaluate(teacher.model, labelled_part(held), "box", 0, boundary=False)
    assert report["teacher_task_box_miou"] == pytest.approx(reference.overall["miou"], abs=1e-12)
    same = report["students"]["same"]
    assert same["box"]["iou_vs_teacher"]["mean"] == 1.0 and same["box"]["by_source"]["random"]["prompts"] > 0


def test_config_names_the_bad_field():
    with pytest.raises(DistillConfigError, match="teacher"):
        DistillConfig(images="x").validate()
    with pytest.raises(DistillConfigError, match="loss"):
        DistillConfig(teacher="t.pth", images="x", loss="l1").validate()
    with pytest.raises(DistillConfigError, match="image_size"):
        DistillConfig(teacher="t.pth", images="x", image_size=100).validate()
    with pytest.raises(DistillConfigError, match="unknown fields"):
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
    with pytest.raises(DistillConfigError, match="vit_q"):
        compare_students(cfg, ["vit_q"], progress=False)
