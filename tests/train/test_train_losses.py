import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from edgesam.train.losses import FOCAL_WEIGHT, dice_loss, focal_loss, segmentation_loss
from tests.tolerances import LOSS_ATOL


def test_focal_matches_torchvision():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, generator=g) * 3
    target = (torch.rand(2, 3, 8, 8, generator=g) > 0.5).float()
    ref = sigmoid_focal_loss(logits, target, reduction="none").mean(dim=(-2, -1))
    assert torch.allclose(focal_loss(logits, target), ref, atol=LOSS_ATOL)


def test_dice_hand_computed():
    # sigmoid(+inf)=1, sigmoid(-inf)=0: prediction covers 2 pixels, target 3, overlap 1
    logits = torch.full((1, 1, 2, 2), -1e4)
    logits[0, 0, 0, :] = 1e4
    target = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    expected = 1 - (2 * 1 + 1) / (2 + 3 + 1)
    assert dice_loss(logits, target).item() == pytest.approx(expected, abs=LOSS_ATOL)


def test_best_of_m_picks_lowest_and_trains_its_iou():
    target = torch.zeros(1, 1, 4, 4)
    target[..., :2, :] = 1
    good = target[0, 0] * 20 - 10  # confident, correct
    bad = -good
    logits = torch.stack([bad, good, bad])[None].clone().requires_grad_(True)
    pred_iou = torch.tensor([[0.3, 0.2, 0.9]], requires_grad=True)
    total, parts = segmentation_loss(logits, target, pred_iou)
    total.backward()
    # only the chosen (middle) output receives gradient; its actual IoU is 1
    assert logits.grad[0, 0].abs().sum() == 0 and logits.grad[0, 2].abs().sum() == 0
    assert logits.grad[0, 1].abs().sum() > 0
    assert parts["iou"].item() == pytest.approx((0.2 - 1.0) ** 2, abs=LOSS_ATOL)
    assert pred_iou.grad[0, 0] == 0 and pred_iou.grad[0, 1] != 0
    expected = FOCAL_WEIGHT * parts["mask"] + parts["dice"] + parts["iou"]
    assert total.item() == pytest.approx(expected.item(), abs=LOSS_ATOL)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="target"):
        segmentation_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), torch.zeros(1, 3))


def test_auto_autocast_is_bf16_on_cuda_and_on_cpus_with_bf16_math_only(monkeypatch):
    import edgesam.train.loop as loop

    cpu = torch.device("cpu")
    monkeypatch.setattr(loop, "cpu_features", lambda: {"flags": {"avx512_bf16": True}, "amx": False})
    assert loop.resolved_amp("auto", cpu) == "bf16"
    monkeypatch.setattr(loop, "cpu_features", lambda: {"flags": {"avx2": True, "avx512_bf16": False}, "amx": False})
    assert loop.resolved_amp("auto", cpu) == "off"
    assert loop.resolved_amp("auto", torch.device("cuda")) == "bf16"
    assert loop.resolved_amp("off", torch.device("cuda")) == "off" and loop.resolved_amp("fp16", cpu) == "fp16"
