"""Structured pruning: real smaller models, exact slicing, importance ranking, analytic FLOPs."""
from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from edgesam.compress import PruneConfig, encoder_flops, magnitude_scores, prune_model, select_units, taylor_scores
from edgesam.models import count_parameters, create_model, save_checkpoint
from edgesam.models.decode import decode_all
from tests.tolerances import PRUNE_ZEROED_EQUIV_ATOL


def expected_encoder_params(arch) -> int:
    """Parameter count of the encoder written out from the arch, independently of the code under test."""
    d, p, g = arch.embed_dim, arch.patch_size, arch.image_size // arch.patch_size
    n = 3 * p * p * d + d + g * g * d  # patch embed (weight + bias), absolute position embedding
    for i in range(arch.depth):
        inner, width = arch.heads(i) * arch.head_dim, arch.mlp_width(i)
        side = g if i in arch.global_attn_indexes else arch.window_size
        n += 4 * d  # two LayerNorms
        n += d * 3 * inner + 3 * inner + inner * d + d  # qkv, proj
        n += 2 * (2 * side - 1) * arch.head_dim  # rel-pos tables
        n += d * width + width + width * d + d  # lin1, lin2
    out = arch.prompt_embed_dim
    return n + d * out + 2 * out + 9 * out * out + 2 * out  # neck: conv, LN2d, conv, LN2d


def _decode(model, images):
    emb = model.image_encoder(images[:1])
    coords = torch.tensor([[[4.0, 6.0], [40.0, 50.0]]])
    labels = torch.tensor([[2.0, 3.0]])
    return emb, decode_all(model, emb, coords, labels)[0]


@torch.no_grad()
def test_ratio_zero_reproduces_model_bit_for_bit(tiny, images):
    model, arch = tiny
    pruned, new_arch, _ = prune_model(model, arch, PruneConfig(ratio=0.0))
    assert not new_arch.is_pruned
    a, b = _decode(model, images), _decode(pruned, images)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@torch.no_grad()
def test_pruned_shapes_and_parameter_count(tiny, images):
    model, arch = tiny
    cfg = PruneConfig(head_ratio=0.34, mlp_ratio=0.5, remove_blocks=(1,))
    pruned, new_arch, report = prune_model(model, arch, cfg)
    assert new_arch.depth == 5 and new_arch.extra["kept_blocks"] == [0, 2, 3, 4, 5]
    assert new_arch.global_attn_indexes == (1, 4)  # original global blocks 2 and 5, renumbered
    assert new_arch.block_heads == (2,) * 5 and new_arch.block_mlp_dims == (384,) * 5
    for block in pruned.image_encoder.blocks:
        assert block.attn.num_heads == 2
        assert block.attn.qkv.weight.shape == (3 * 2 * 64, 192) and block.attn.proj.weight.shape == (192, 128)
        assert block.mlp.lin1.weight.shape == (384, 192) and block.mlp.lin2.weight.shape == (192, 384)
    assert [b.window_size for b in pruned.image_encoder.blocks] == [8, 0, 8, 8, 0]
    assert count_parameters(pruned.image_encoder) == expected_encoder_params(new_arch) == report["encoder_params"]["after"]
    assert count_parameters(model.image_encoder) == expected_encoder_params(arch)
    assert pruned.image_encoder(images).shape == (2, 256, 4, 4)
    assert report["encoder_gflops"]["after"] < report["encoder_gflops"]["before"]


@torch.no_grad()
def test_pruned_model_saves_and_reloads_without_flags(tiny, images, tmp_path):
    model, arch = tiny
    pruned, new_arch, _ = prune_model(model, arch, PruneConfig(ratio=0.5, scope="global", remove_blocks=(3,)))
    path = tmp_path / "pruned.pth"
    save_checkpoint(pruned, path, new_arch)
    reloaded = create_model(checkpoint=path)
    assert [b.attn.num_heads for b in reloaded.image_encoder.blocks] == list(new_arch.block_heads)
    a, b = _decode(pruned, images), _decode(reloaded, images)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def _zero_units(model, head: int, channels: slice):
    """Zero one head and some MLP channels in every block; return the modified copy."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for block in model.image_encoder.blocks:
            hd = block.attn.qkv.out_features // (3 * block.attn.num_heads)
            qkv_w = block.attn.qkv.weight.view(3, block.attn.num_heads, hd, -1)
            qkv_w[:, head] = 0
            block.attn.qkv.bias.view(3, block.attn.num_heads, hd)[:, head] = 0
            block.attn.proj.weight.view(-1, block.attn.num_heads, hd)[:, head] = 0
            block.mlp.lin1.weight[channels] = 0
            block.mlp.lin1.bias[channels] = 0
            block.mlp.lin2.weight[:, channels] = 0
    return model


@torch.no_grad()
def test_zeroed_units_rank_lowest_and_pruning_them_changes_nothing(tiny, images):
    model, arch = tiny
    zeroed = _zero_units(model, head=1, channels=slice(100, 484))  # 384 of 768 channels
    heads, channels = magnitude_scores(zeroed.image_encoder)
    for h, c in zip(heads, channels):
        assert int(h.argmin()) == 1 and h[1] == 0
        assert set(torch.argsort(c)[:384].tolist()) == set(range(100, 484))
    pruned, new_arch, _ = prune_model(zeroed, arch, PruneConfig(head_ratio=0.34, mlp_ratio=0.5))
    assert new_arch.block_heads == (2,) * 6 and new_arch.block_mlp_dims == (384,) * 6
    # Zeroed heads/channels contribute nothing, so removing exactly them leaves the output unchanged,
    # while the original (unzeroed) model differs: the test can see a wrong slice.
    ref, out, orig = zeroed.image_encoder(images), pruned.image_encoder(images), model.image_encoder(images)
    assert torch.allclose(out, ref, atol=PRUNE_ZEROED_EQUIV_ATOL, rtol=0)
    assert not torch.allclose(orig, ref, atol=100 * PRUNE_ZEROED_EQUIV_ATOL, rtol=0)


def test_taylor_ranks_zeroed_head_lowest_and_is_seeded(tiny, images):
    model, _ = tiny
    zeroed = _zero_units(model, head=2, channels=slice(0, 8))
    heads, channels = taylor_scores(zeroed.image_encoder, [images], probes=2, seed=3)
    again, _ = taylor_scores(zeroed.image_encoder, [images], probes=2, seed=3)
    for h, c, h2 in zip(heads, channels, again):
        assert h[2] == 0 and h[:2].min() > 0
        assert torch.all(c[:8] == 0) and c[8:].min() >= 0 and c[8:].max() > 0
        assert torch.equal(h, h2)
    assert all(p.grad is None for p in zeroed.parameters())


def test_taylor_needs_calibration_images(tiny):
    model, arch = tiny
    with pytest.raises(ValueError, match="calib"):
        prune_model(model, arch, PruneConfig(ratio=0.5, importance="taylor"))


def test_select_units_global_keeps_minimums_and_prefers_weak_blocks():
    scores = [torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([0.1, 1.0, 1.0, 3.0])]
    # Normalised by block mean, block 1's first two units are the weakest two of all eight.
    assert select_units(scores, 0.25, "global") == [[0, 1, 2, 3], [1, 3]]
    assert select_units(scores, 0.25, "per_block") == [[0, 1, 2], [1, 2, 3]]  # ties: lower index kept
    # Everything below the threshold in one block still leaves one unit there.
    keep = select_units([torch.tensor([1.0, 1.0]), torch.tensor([0.01, 0.01])], 0.5, "global")
    assert all(len(k) >= 1 for k in keep)
    assert select_units([torch.arange(16.0)], 0.5, "per_block", multiple=8) == [list(range(8, 16))]


def test_config_validation_names_the_field():
    for kwargs, field in [({"ratio": 1.0}, "ratio"), ({"importance": "random"}, "importance"),
                          ({"scope": "layer"}, "scope"), ({"remove_blocks": (1, 1)}, "remove_blocks")]:
        with pytest.raises(ValueError, match=field):
            PruneConfig(**kwargs)
    assert PruneConfig.from_dict(PruneConfig(head_ratio=0.25, remove_blocks=(2, 0)).to_dict()).remove_blocks == (0, 2)


def test_remove_blocks_out_of_range_is_an_error(tiny):
    model, arch = tiny
    with pytest.raises(ValueError, match="out of range"):
        prune_model(model, arch, PruneConfig(remove_blocks=(6,)))


@pytest.mark.parametrize("heads,widths", [(None, None), ((2, 1, 3, 2, 2, 1), (384, 128, 768, 64, 8, 200))])
def test_analytic_flops_match_torch_flop_counter(tiny, heads, widths):
    _, arch = tiny
    arch = arch.replace(block_heads=heads, block_mlp_dims=widths)
    from edgesam.models import build_sam

    model = build_sam(arch)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.image_encoder(torch.zeros(1, 3, arch.image_size, arch.image_size))
    assert encoder_flops(arch)["total"] == counter.get_total_flops()
