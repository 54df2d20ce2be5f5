"""2:4 semi-structured sparsity: the mask pattern on CPU; the compressed kernels on a GPU only."""
from __future__ import annotations

import copy

import pytest
import torch

from tests.tolerances import PRUNE_SPARSE24_FP16_ATOL
from edgesam.compress.sparse24 import apply_2to4, encoder_linears, is_2to4, semi_structured_mask, to_semi_structured


def test_mask_keeps_the_two_largest_of_every_four():
    w = torch.tensor([[0.1, -3.0, 2.0, 0.5, 4.0, 0.0, -0.2, 1.0]])
    assert semi_structured_mask(w).tolist() == [[False, True, True, False, True, False, False, True]]
    with pytest.raises(ValueError, match="multiple of 4"):
        semi_structured_mask(torch.zeros(2, 6))


def test_apply_2to4_sparsifies_every_encoder_linear_by_half(tiny, images):
    model = copy.deepcopy(tiny[0])
    dense = {n: m.weight.detach().clone() for n, m in encoder_linears(model).items()}
    report = apply_2to4(model)
    assert report["layers"] == 6 * 4 and report["zeroed"] * 2 == report["weights"]
    for name, linear in encoder_linears(model).items():
        w = linear.weight
        assert is_2to4(w) and not is_2to4(dense[name])
        kept = w != 0
        # every kept weight is at least as large as every dropped one of its group
        groups_d, groups_k = dense[name].abs().reshape(w.shape[0], -1, 4), kept.reshape(w.shape[0], -1, 4)
        assert torch.all(groups_d.masked_fill(~groups_k, float("inf")).amin(-1) >= groups_d.masked_fill(groups_k, 0).amax(-1))
    with torch.no_grad():
        assert model.image_encoder(images).shape == (2, 256, 4, 4)


def test_to_semi_structured_refuses_cpu_weights(tiny):
    with pytest.raises(ValueError, match="CUDA"):  # raised before any layer is touched
        to_semi_structured(tiny[0])


@pytest.mark.gpu
def test_semi_structured_matches_masked_dense_on_gpu(tiny, images):
    model = copy.deepcopy(tiny[0])
    apply_2to4(model)
    model = model.cuda().half()
    x = images.cuda().half()
    with torch.no_grad():
        ref = model.image_encoder(x)
        report = to_semi_structured(model)
        out = model.image_encoder(x)
    assert report["converted"]
    assert torch.allclose(out.float(), ref.float(), atol=PRUNE_SPARSE24_FP16_ATOL, rtol=0)
