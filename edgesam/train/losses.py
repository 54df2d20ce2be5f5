"""Training losses for prompted segmentation, as SAM trains its mask decoder.

Focal + Dice on the low-resolution mask logits (SAM weighs them 20:1), plus MSE between the IoU
head's prediction and the actual IoU of the mask it scores. From random init, plain BCE + Dice (1:1)
learns faster: focal's alpha = 0.25 down-weights the foreground a model has not yet learned to mark. With several outputs per prompt
(multimask, for ambiguous single-point prompts) only the output with the lowest mask loss is
trained, so the three heads can specialise on different valid answers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

FOCAL_WEIGHT = 20.0  # SAM paper, section 3: "a linear combination of focal loss and dice loss in a 20:1 ratio"
DICE_WEIGHT = 1.0
IOU_WEIGHT = 1.0
DICE_SMOOTH = 1.0  # keeps the loss defined (and 0) for an empty target predicted empty
MASK_LOSSES = ("focal_dice", "bce_dice")


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Sigmoid focal loss (Lin et al.) averaged over the last two (spatial) dims -> shape logits.shape[:-2]."""
    logits, target = logits.float(), target.float()
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.mean(dim=(-2, -1))


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice loss 1 - (2|P.T| + 1) / (|P| + |T| + 1) over the spatial dims -> shape logits.shape[:-2]."""
    prob = torch.sigmoid(logits.float()).flatten(-2)
    target = target.float().flatten(-2)
    inter = (prob * target).sum(-1)
    return 1 - (2 * inter + DICE_SMOOTH) / (prob.sum(-1) + target.sum(-1) + DICE_SMOOTH)


def mask_iou_from_logits(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Hard IoU of (logits > 0) with target (> 0.5) over the spatial dims; 1 when both are empty."""
    pred = logits.detach().float() > 0
    gt = target.detach().float() > 0.5
    inter = (pred & gt).flatten(-2).sum(-1).float()
    union = (pred | gt).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def mask_loss(logits: torch.Tensor, target: torch.Tensor, kind: str = "focal_dice") -> tuple[torch.Tensor, dict]:
    """Pixel + Dice loss of one mask per prompt (B, 1, h, w) against its target, without the IoU term:
    what a refiner's finer mask is trained with. Returns (mean loss, {"fine"})."""
    if kind not in MASK_LOSSES:
        raise ValueError(f"loss: expected one of {list(MASK_LOSSES)}, got {kind!r}")
    if logits.shape != target.shape:
        raise ValueError(f"mask_loss: logits {tuple(logits.shape)} and target {tuple(target.shape)} differ")
    dice = dice_loss(logits, target)
    if kind == "focal_dice":
        loss = FOCAL_WEIGHT * focal_loss(logits, target) + DICE_WEIGHT * dice
    else:
        pixel = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none").mean(dim=(-2, -1))
        loss = pixel + dice
    loss = loss.mean()
    return loss, {"fine": loss.detach()}


def segmentation_loss(low_res_logits: torch.Tensor, target: torch.Tensor, pred_iou: torch.Tensor,
                      kind: str = "focal_dice"):
    """Loss of M candidate masks per prompt against one target mask.

    low_res_logits (B, M, h, w), target (B, 1, h, w) float in [0, 1], pred_iou (B, M); `kind` is
    "focal_dice" (SAM's 20:1) or "bce_dice" (1:1). Returns (total, {"mask", "dice", "iou"}) with the
    parts as detached scalars of the chosen outputs ("mask" is the focal or BCE term).
    """
    if kind not in MASK_LOSSES:
        raise ValueError(f"loss: expected one of {list(MASK_LOSSES)}, got {kind!r}")
    if low_res_logits.dim() != 4 or target.dim() != 4 or target.shape[1] != 1:
        raise ValueError(f"segmentation_loss: expected logits (B,M,h,w) and target (B,1,h,w), "
                         f"got {tuple(low_res_logits.shape)} and {tuple(target.shape)}")
    if low_res_logits.shape[-2:] != target.shape[-2:] or pred_iou.shape != low_res_logits.shape[:2]:
        raise ValueError(f"segmentation_loss: shapes disagree: logits {tuple(low_res_logits.shape)}, "
                         f"target {tuple(target.shape)}, pred_iou {tuple(pred_iou.shape)}")
    target_m = target.expand_as(low_res_logits)
    dice = dice_loss(low_res_logits, target_m)
    if kind == "focal_dice":
        pixel = focal_loss(low_res_logits, target_m)
        mask_loss = FOCAL_WEIGHT * pixel + DICE_WEIGHT * dice  # (B, M)
    else:
        pixel = F.binary_cross_entropy_with_logits(low_res_logits.float(), target_m.float(),
                                                   reduction="none").mean(dim=(-2, -1))
        mask_loss = pixel + dice
    best = mask_loss.detach().argmin(dim=1, keepdim=True)  # best-of-M, as SAM does for ambiguous prompts
    pick = lambda t: t.gather(1, best).squeeze(1)  # noqa: E731
    actual_iou = mask_iou_from_logits(low_res_logits, target_m)
    iou_mse = F.mse_loss(pick(pred_iou.float()), pick(actual_iou))
    total = pick(mask_loss).mean() + IOU_WEIGHT * iou_mse
    parts = {"mask": pick(pixel).mean().detach(), "dice": pick(dice).mean().detach(), "iou": iou_mse.detach()}
    return total, parts
