"""Recovery fine-tuning of a pruned encoder by distillation from the unpruned teacher.

The student's prompt encoder and mask decoder are the teacher's (pruning never touches them) and
stay frozen; only the image encoder trains, so that it hands the decoder what the teacher's did:
  loss = embed_weight * MSE(student embedding, teacher embedding)
       + mask_weight * segmentation_loss(student low-res masks, teacher's binarised masks)
on box prompts drawn from the ground truth (the finetune engineer's `prepare_sample`), framed as the
model frames its input (a ROI-framed model distils on its crops, with its dense box prompt). Unlabelled
images (e.g. defect-free line images) still teach the embedding term. No labels are needed for
the loss itself: the teacher supplies every target.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from edgesam.data import AugmentConfig, Augmenter
from edgesam_runtime import geometry
from edgesam.compress.config import RecoveryConfig
from edgesam.models.decode import decode_all
from edgesam.train.optim import adamw
from edgesam.train.batches import PromptConfig, prepare_sample
from edgesam.train.losses import segmentation_loss
from edgesam.compress.runlog import RunLog
from edgesam_runtime.roi import WHOLE_IMAGE

METRIC_COLUMNS = ("epoch", "step", "loss", "embed_mse", "mask_loss", "lr", "img_s")
STAGE = "prune.recover"


def recover(pruned, teacher, dataset, config: RecoveryConfig, run_dir: str | Path | None = None, log=print) -> dict:
    """Fine-tune `pruned` in place against `teacher` on `dataset`; return the recovery report."""
    if len(dataset) == 0:
        raise ValueError("recover: the recovery dataset has no images")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    size = pruned.image_encoder.img_size
    _freeze(teacher, train_encoder=False)
    _freeze(pruned, train_encoder=True)
    params = [p for p in pruned.image_encoder.parameters()]
    optimizer = adamw(params, lr=config.lr, weight_decay=config.weight_decay)
    probe = fixed_items(dataset, size, config, n=config.eval_images, framing=_framing(teacher))
    before = distillation_loss(pruned, teacher, probe, config)
    log(f"recover: distillation loss before {before['loss']:.4f} (embed {before['embed_mse']:.5f}, mask {before['mask_loss']:.4f})")
    recorder = RunLog(run_dir)
    recorder.status("running", "recovery started", {"distill_before": before}, stage=STAGE)
    history = _train(pruned, teacher, dataset, config, optimizer, rng, recorder)
    after = distillation_loss(pruned, teacher, probe, config)
    log(f"recover: distillation loss after  {after['loss']:.4f} (embed {after['embed_mse']:.5f}, mask {after['mask_loss']:.4f})")
    pruned.eval()
    for p in pruned.parameters():
        p.requires_grad_(False)
    report = {"config": config.to_dict(), "steps": len(history), "images": len(dataset),
              "distill_before": before, "distill_after": after,
              "seconds": round(sum(r["seconds"] for r in history), 2)}
    recorder.status("done", "recovery finished", {"distill_after": after, "steps": len(history)}, stage=STAGE)
    return report


def _freeze(model, train_encoder: bool) -> None:
    model.eval()  # SAM has no dropout or batch norm: eval mode trains the same and stays deterministic
    for name, p in model.named_parameters():
        p.requires_grad_(train_encoder and name.startswith("image_encoder."))


def _train(student, teacher, dataset, config, optimizer, rng, recorder) -> list[dict]:
    prompts = PromptConfig(box_prob=1.0, box_jitter=config.box_jitter)
    augmenter = _augmenter(config) if config.augment else None
    total = config.epochs * len(dataset)
    if config.max_steps:
        total = min(total, config.max_steps)
    cache: dict[int, torch.Tensor] = {}  # teacher embeddings: fixed inputs when not augmenting
    history: list[dict] = []
    bar = tqdm(total=total, desc="recover", unit="img", disable=not config.progress)
    for epoch in range(config.epochs):
        for index in rng.permutation(len(dataset)).tolist():
            if len(history) >= total:
                break
            start = time.perf_counter()
            sample = dataset.load(index)
            item = prepare_sample(sample, student.image_encoder.img_size, rng, prompts, config.max_objects, augmenter,
                                  _framing(student))
            image = item.image if item is not None else torch.from_numpy(geometry.preprocess(sample.image, student.image_encoder.img_size)[0])
            # Cached teacher embeddings only where the input is the same every epoch: augmentation and
            # ROI crops (drawn around jittered, sampled boxes) change it.
            key = None if augmenter is not None or _framing(student).roi else index
            parts = _step(student, teacher, image, item, config, optimizer, cache, key)
            seconds = time.perf_counter() - start
            history.append({"epoch": epoch, "step": len(history) + 1, **parts,
                            "lr": optimizer.param_groups[0]["lr"], "img_s": round(1.0 / seconds, 3), "seconds": seconds})
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.4f}")
            if len(history) % 10 == 0:
                recorder.metrics(history, METRIC_COLUMNS)
        recorder.status("running", f"epoch {epoch} done", {"epoch": epoch, "loss": history[-1]["loss"] if history else None}, stage=STAGE)
    bar.close()
    recorder.metrics(history, METRIC_COLUMNS)
    return history


def _framing(model):
    return getattr(model, "framing", WHOLE_IMAGE)


def _augmenter(config):
    return Augmenter(AugmentConfig(), seed=config.seed)


def _step(student, teacher, image, item, config, optimizer, cache, key) -> dict:
    with torch.no_grad():
        t_emb = cache.get(key) if key is not None else None
        if t_emb is None:
            t_emb = teacher.image_encoder(image)
            if key is not None:
                cache[key] = t_emb
    loss, parts = _loss(student, teacher, image, item, t_emb, config)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return parts


def _loss(student, teacher, image, item, t_emb, config):
    """Distillation loss of one image: (total tensor, float parts)."""
    s_emb = student.image_encoder(image)
    embed = F.mse_loss(s_emb, t_emb)
    mask = torch.zeros(())
    if item is not None and config.mask_weight > 0:
        with torch.no_grad():
            t_low, _ = decode_all(teacher, t_emb, item.coords, item.labels, item.mask_input)
            target = (t_low[:, :1] > 0).float()
        s_low, s_iou = decode_all(student, s_emb, item.coords, item.labels, item.mask_input)
        mask, _ = segmentation_loss(s_low[:, :1], target, s_iou[:, :1])  # box prompts: single-mask output
    total = config.embed_weight * embed + config.mask_weight * mask
    return total, {"loss": total.item(), "embed_mse": embed.item(), "mask_loss": mask.item()}


def fixed_items(dataset, image_size: int, config: RecoveryConfig, n: int, framing=None) -> list:
    """The first `n` images with tight-box prompts (seeded), framed as the model frames its input:
    a fixed set to compare losses on."""
    rng = np.random.default_rng(config.seed + 1)
    prompts = PromptConfig(box_prob=1.0, box_jitter=0.0)
    items = []
    for index in range(min(n, len(dataset))):
        sample = dataset.load(index)
        item = prepare_sample(sample, image_size, rng, prompts, config.max_objects, framing=framing or WHOLE_IMAGE)
        image = item.image if item is not None else torch.from_numpy(geometry.preprocess(sample.image, image_size)[0])
        items.append((image, item))
    return items


@torch.no_grad()
def distillation_loss(student, teacher, items, config: RecoveryConfig) -> dict:
    """Mean distillation loss (and parts) of `student` against `teacher` over fixed items."""
    sums = {"loss": 0.0, "embed_mse": 0.0, "mask_loss": 0.0}
    for image, item in items:
        _, parts = _loss(student, teacher, image, item, teacher.image_encoder(image), config)
        for k in sums:
            sums[k] += parts[k]
    return {k: v / max(len(items), 1) for k, v in sums.items()}
