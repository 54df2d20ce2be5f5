"""A tiny teacher distils into a vit_n student on synthetic line images: the loss falls, the student
checkpoint is a complete SAM that loads, exports and runs in the runtime, and the run dir is complete."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from tests.distill.conftest import IMAGE_SIZE, tiny_config
from tests.tolerances import RUNTIME_LOGITS_ATOL

pytestmark = pytest.mark.slow  # long integration tests: CI runs them (`pytest -m slow`)


@pytest.fixture(scope="module")
def run(teacher_path, line_dir, tmp_path_factory):
    from edgesam.distill import distill

    out = tmp_path_factory.mktemp("distill_run")
    cfg = tiny_config(teacher_path, line_dir, out, mask_epochs=1)
    report = distill(cfg, progress=False, log=lambda m: None)
    return cfg, report


def test_the_embedding_loss_falls_and_beats_the_untrained_student(run):
    cfg, report = run
    rows = list(csv.DictReader((cfg.run_path / "metrics.csv").open()))
    embed = [r for r in rows if r["stage"] == "embed"]
    assert len(embed) == cfg.epochs
    assert float(embed[-1]["train_loss"]) < 0.7 * float(embed[0]["train_loss"])
    assert float(embed[-1]["val_mse"]) < float(embed[0]["val_mse"])
    held = report["embedding"]
    assert held["student"]["val_mse"] < 0.7 * held["untrained"]["val_mse"]
    assert held["student"]["val_cos"] > held["untrained"]["val_cos"] + 0.2


def test_mask_stage_runs_after_the_embedding_stage_and_validates_as_the_report_scores(run):
    cfg, report = run
    rows = list(csv.DictReader((cfg.run_path / "metrics.csv").open()))
    assert [r["stage"] for r in rows] == ["embed"] * cfg.epochs + ["mask"]
    # one mask epoch: its validation figure is the report's box agreement of the final student (same scorer,
    # same prompts; the run validated with the efficient attention kernels, the report with the official ones)
    box = report["agreement"]["students"]["student"]["box"]
    assert box["iou_vs_teacher"]["n"] > 0
    assert float(rows[-1]["val_mask_iou"]) == pytest.approx(box["iou_vs_teacher"]["mean"], abs=0.02)


def test_student_checkpoint_is_the_student_encoder_with_the_teachers_decoder(run, teacher_path):
    from edgesam.distill.models import DECODER_PREFIXES
    from edgesam.models import load_model
    from edgesam_runtime.files import sha256_file

    cfg, _ = run
    student, arch = load_model(None, cfg.out_path)  # no flags: the architecture is recorded
    teacher, _ = load_model(None, teacher_path)
    assert (arch.variant, arch.image_size) == ("vit_n", IMAGE_SIZE)
    assert arch.extra["distilled_from"]["teacher_sha256"] == sha256_file(teacher_path)
    s, t = student.state_dict(), teacher.state_dict()
    decoder = [k for k in s if k.startswith(DECODER_PREFIXES)]
    assert decoder and all(torch.equal(s[k], t[k]) for k in decoder if k.startswith("prompt_encoder."))
    # The mask stage nudged the decoder, but only a little (a tenth of the encoder's step).
    changed = [k for k in decoder if not torch.equal(s[k], t[k])]
    assert changed and all(k.startswith("mask_decoder.") for k in changed)
    assert s["image_encoder.patch_embed.proj.weight"].shape[0] == 128


def test_student_exports_and_runs_in_the_runtime(run, tmp_path):
    from edgesam.export import ExportConfig, export_bundle
    from edgesam.models import create_model
    from edgesam.reference.predictor import SamReferencePredictor
    from edgesam_runtime import Segmenter

    cfg, _ = run
    manifest = export_bundle(cfg.out_path, tmp_path / "bundle", ExportConfig(precisions=("fp32",)), progress=False)
    assert manifest["model"]["variant"] == "vit_n"
    image = (np.random.default_rng(0).random((70, 90)) * 255).astype(np.uint8)
    boxes = np.array([[5, 8, 50, 60], [30, 10, 85, 66]], np.float32)
    seg = Segmenter.open(tmp_path / "bundle", threads=1)
    got = seg.segment(seg.encode(image), boxes=boxes)
    ref = SamReferencePredictor(create_model(checkpoint=cfg.out_path))
    ref.set_image(image)
    want = ref.predict(boxes=boxes)
    assert got.masks.shape == (2, 1, 70, 90) and got.masks.any()
    np.testing.assert_allclose(got.low_res_logits, want.low_res_logits, atol=RUNTIME_LOGITS_ATOL, rtol=0)


def test_run_dir_holds_config_metrics_status_curves_and_report(run):
    from edgesam.distill import DistillConfig

    cfg, report = run
    d = cfg.run_path
    for name in ("config.yaml", "metrics.csv", "status.jsonl", "curves.png", "report.md", "report.json", "last.pt",
                 "best_embed.pt", "best_mask.pt"):
        assert (d / name).is_file(), name
    assert DistillConfig.from_yaml(d / "config.yaml") == cfg
    events = [json.loads(line) for line in (d / "status.jsonl").read_text().splitlines()]
    states = [e["state"] for e in events]
    assert states[0] == "setup" and states[-1] == "done" and "cache" in states and states.count("epoch") == cfg.epochs + 1
    assert all(e["stage"] == "distill" and e["student"] == "vit_n" for e in events)
    assert events[-1]["figures"]["box_iou_vs_teacher"] == pytest.approx(
        report["agreement"]["students"]["student"]["box"]["iou_vs_teacher"]["mean"])
    text = (d / "report.md").read_text()
    assert "untrained start" in text and "after the embedding stage" in text  # the mask stage's gain is visible
    assert set(report["agreement"]["students"]) == {"student", "untrained", "embed_stage"}


def test_existing_run_is_not_overwritten_and_resume_refuses_other_settings(run):
    from edgesam.distill import distill
    from edgesam.utils.config import ConfigError

    cfg, _ = run
    with pytest.raises(FileExistsError, match="--resume"):
        distill(cfg, progress=False)
    with pytest.raises(ConfigError, match="loss"):
        distill(cfg.replace(loss="mse+cos"), progress=False, resume=True)


def test_a_killed_run_resumes_to_the_same_student(run, tmp_path):
    """Stop after one epoch (what a kill after the epoch's checkpoint leaves), resume: the same student as
    the uninterrupted run of the same config, through both stages."""
    from edgesam.distill import distill
    from edgesam.models import read_checkpoint

    whole, _ = run
    split = whole.replace(out=str(tmp_path / "student.pth"), run_dir=None, cache_dir=str(whole.cache_path))
    assert distill(split, progress=False, stop_after_epochs=1, log=lambda m: None)["stopped"]
    assert not split.out_path.exists()
    distill(split, progress=False, resume=True, log=lambda m: None)
    a, _ = read_checkpoint(whole.out_path)
    b, _ = read_checkpoint(split.out_path)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    rows = lambda c: [(r["stage"], r["val_mse"]) for r in csv.DictReader((c.run_path / "metrics.csv").open())]  # noqa: E731
    assert rows(whole) == rows(split) and len(rows(split)) == whole.epochs + whole.mask_epochs


def test_roi_teacher_gives_an_roi_student_that_runs_in_the_runtime(line_dir, tmp_path):
    """A teacher that frames its input around boxes (with a dense box prompt) hands that framing on."""
    from edgesam.distill import distill
    from edgesam.export import ExportConfig, export_bundle
    from edgesam.models import arch_for, build_sam, create_model, save_checkpoint
    from edgesam.reference.predictor import SamReferencePredictor
    from edgesam_runtime.roi import InputFraming, with_framing
    from edgesam_runtime import Segmenter

    torch.manual_seed(0)
    framing = InputFraming(mode="roi", dense_box=True)
    arch = with_framing(arch_for("vit_t", IMAGE_SIZE), framing)
    teacher = save_checkpoint(build_sam(arch), tmp_path / "roi_teacher.pth", arch)
    cfg = tiny_config(teacher, line_dir, tmp_path, epochs=1, views_per_image=1, eval_max_images=1)
    report = distill(cfg, progress=False, log=lambda m: None)
    assert report["agreement"]["students"]["student"]["point"] is None  # ROI models take boxes
    student = create_model(checkpoint=cfg.out_path)
    assert student.framing == framing
    manifest = export_bundle(cfg.out_path, tmp_path / "bundle", ExportConfig(precisions=("fp32",)), progress=False)
    assert manifest["model"]["framing"]["mode"] == "roi"
    image = (np.random.default_rng(1).random((70, 90)) * 255).astype(np.uint8)
    boxes = np.array([[5, 8, 30, 40], [40, 20, 80, 60]], np.float32)
    seg = Segmenter.open(tmp_path / "bundle", threads=1)
    got = seg.segment(seg.encode(image), boxes=boxes)
    ref = SamReferencePredictor(student)
    ref.set_image(image)
    np.testing.assert_allclose(got.low_res_logits, ref.predict(boxes=boxes).low_res_logits,
                               atol=RUNTIME_LOGITS_ATOL, rtol=0)
