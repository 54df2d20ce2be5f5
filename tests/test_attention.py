"""EfficientAttention computes the official attention (forward and gradients) within tolerance."""
import copy

import pytest
import torch
from segment_anything.modeling.image_encoder import Attention

from edgesam.models import arch_for, build_sam
from edgesam.models.attention import EfficientAttention, use_efficient_attention, use_official_attention
from tests.tolerances import ATTENTION_ATOL, ATTENTION_GRAD_RTOL


def _randomize(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():  # rel_pos is zero-initialised: make it non-zero so the bias matters
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


@pytest.mark.parametrize("size", [(8, 8), (6, 10)])
def test_module_matches_official(size):
    official = Attention(48, num_heads=3, use_rel_pos=True, input_size=size)
    _randomize(official)
    efficient = copy.deepcopy(official)
    efficient.__class__ = EfficientAttention
    x = torch.randn(2, *size, 48, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    ref, out = official(x), efficient(x2)
    assert torch.allclose(out, ref, atol=ATTENTION_ATOL), (out - ref).abs().max()
    ref.square().sum().backward()
    out.square().sum().backward()
    assert _rel_err(x2.grad, x.grad) < ATTENTION_GRAD_RTOL
    for (name, p), q in zip(official.named_parameters(), efficient.parameters()):
        assert _rel_err(q.grad, p.grad) < ATTENTION_GRAD_RTOL, name


def _rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def test_swap_on_whole_pruned_encoder_keeps_state_dict():
    arch = arch_for("vit_t", 64).replace(block_heads=(3, 2, 1, 3, 2, 1))
    model = build_sam(arch)
    _randomize(model.image_encoder, seed=1)
    keys = list(model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model.image_encoder(x)
        use_efficient_attention(model)
        assert sum(isinstance(m, EfficientAttention) for m in model.modules()) == arch.depth
        out = model.image_encoder(x)
    assert list(model.state_dict()) == keys
    assert torch.allclose(out, ref, atol=ATTENTION_ATOL * 10), (out - ref).abs().max()
    use_official_attention(model)
    assert not any(isinstance(m, EfficientAttention) for m in model.modules())
