"""The from-scratch recipe: ROI crops + dense box + BCE/Dice, every weight trained; a short run learns."""
import json

import numpy as np
import pytest

from edgesam_runtime.roi import InputFraming
from edgesam.train import FinetuneConfig, finetune


def test_random_init_takes_the_scratch_recipe():
    cfg = FinetuneConfig(model="vit_t", init="random")
    assert cfg.recipe == "scratch" and cfg.strategy == "full" and cfg.loss == "bce_dice"
    assert cfg.framing == InputFraming(mode="roi", roi_margin=1.5, dense_box=True) and cfg.box_prob == 1.0
    pretrained = FinetuneConfig(model="vit_b", checkpoint="sam.pth")
    assert pretrained.recipe == "adapt" and pretrained.strategy == "lora" and pretrained.loss == "bce_dice"
    assert pretrained.decoder_mode == "lora"  # low-parameter: adapters only, the decoder is not trained whole
    assert pretrained.framing is None  # as the checkpoint records it
    explicit = FinetuneConfig(model="vit_t", init="random", strategy="lora", loss="focal_dice")
    assert (explicit.strategy, explicit.loss, explicit.input_mode) == ("lora", "focal_dice", "roi")
    assert "recipe: scratch" in cfg.to_yaml() and FinetuneConfig.from_dict(cfg.to_dict()) == cfg


def test_roi_needs_box_prompts():
    with pytest.raises(ValueError, match="box_prob"):
        FinetuneConfig(model="vit_t", init="random", box_prob=0.5)


@pytest.mark.slow
def test_short_scratch_run_learns_and_segments(tiny_data, tmp_path):
    from edgesam.data import load_dataset, sample_box
    from edgesam.eval import train_val
    from edgesam.models import create_model
    from edgesam.reference.predictor import SamReferencePredictor
    from edgesam.train import merge_run

    cfg = FinetuneConfig(model="vit_t", init="random", image_size=64, data=str(tiny_data), out=str(tmp_path / "run"),
                         epochs=12, batch_size=2, objects_per_image=2, warmup_steps=5, val_max_images=2, val_every=5)
    result = finetune(cfg, progress=False)
    steps = [json.loads(x) for x in (tmp_path / "run/status.jsonl").read_text().splitlines()]
    # the start scored (epoch 0), then validated after epochs 5 and 10 and after the last; the epochs
    # between are trained only
    assert [s["figures"]["epoch"] + 1 for s in steps if s["state"] == "validating"] == [0, 5, 10, 12]
    validated = [row["epoch"] for row in result.history if row["val_miou"] == row["val_miou"]]
    assert validated == [0, 5, 10, 12] and len(result.history) == 13
    losses = [s["figures"]["loss"] for s in steps if s["state"] == "step"]
    assert len(losses) >= 16
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4]), losses
    merge_run(tmp_path / "run", tmp_path / "merged.pth")
    model = create_model(checkpoint=tmp_path / "merged.pth")
    assert model.framing == cfg.framing  # the recipe's framing travels with the merged checkpoint
    ds = load_dataset(tiny_data)
    _, val = train_val(ds, 0.2, 0)
    predictor = SamReferencePredictor(model)
    marked = 0
    for i in range(len(val)):
        sample = val.load(i)
        if not len(sample.masks):
            continue
        predictor.set_image(sample.image)
        boxes = np.stack([sample_box(m, np.random.default_rng(0), 0.0) for m in sample.masks])
        marked += int(predictor.predict(boxes=boxes).masks.reshape(len(boxes), -1).any(axis=1).sum())
    assert marked > 0, "the trained model marks nothing: the collapse the recipe exists to prevent"


def test_fine_tuning_a_roi_model_keeps_its_framing(tiny_data, tmp_path):
    """A checkpoint trained in ROI framing is fine-tuned (and recorded) in ROI framing without flags."""
    import torch
    import yaml

    from edgesam.models import arch_for, build_sam, create_model, save_checkpoint
    from edgesam_runtime.roi import with_framing
    from edgesam.train import merge_run

    framing = InputFraming(mode="roi", roi_margin=1.5, dense_box=True)
    arch = with_framing(arch_for("vit_t", 64), framing)
    torch.manual_seed(0)
    save_checkpoint(build_sam(arch), tmp_path / "base.pth", arch)
    cfg = FinetuneConfig(model="vit_t", checkpoint=str(tmp_path / "base.pth"), data=str(tiny_data),
                         out=str(tmp_path / "run"), strategy="decoder", max_steps=2, val_max_images=1, lr_decoder=1e-2)
    assert cfg.framing is None and cfg.box_prob == 0.5
    finetune(cfg, progress=False)
    recorded = yaml.safe_load((tmp_path / "run/config.yaml").read_text())
    assert (recorded["input_mode"], recorded["roi_margin"], recorded["dense_box"], recorded["box_prob"]) == \
        ("roi", 1.5, True, 1.0)
    merge_run(tmp_path / "run", tmp_path / "merged.pth")
    assert create_model(checkpoint=tmp_path / "merged.pth").framing == framing
