"""Each strategy lowers the loss on a fixed batch and changes only the parameters it should."""
import numpy as np
import pytest
import torch

from edgesam.data import load_dataset
from edgesam.models import arch_for, build_sam
from edgesam.models.attention import use_efficient_attention
from edgesam.train.batches import PromptConfig, collate, prepare_sample
from edgesam.train.loop import LossModule
from edgesam.train.strategies import apply_strategy, lora_target_pattern
from tests.tolerances import GRAD_CHECKPOINT_ATOL
from tests.train.conftest import tiny_config


def _expected_changed(name: str, strategy: str) -> bool:
    if strategy == "full":
        return True
    if strategy == "lora":  # LoRA on the encoder's attention and the decoder's transformer, nothing else
        return ".lora_" in name
    if name.startswith("mask_decoder."):
        return True
    if strategy == "partial":  # last 2 blocks of 6, plus the neck
        return name.startswith(("image_encoder.blocks.4.", "image_encoder.blocks.5.", "image_encoder.neck."))
    return False


@pytest.mark.parametrize("strategy", ["lora", "decoder", "partial", "full"])
def test_strategy_lowers_loss_and_touches_only_its_params(strategy, tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, tmp_path, strategy=strategy, partial_blocks=2, box_prob=1.0)
    torch.manual_seed(0)
    sam = use_efficient_attention(build_sam(arch_for("vit_t", 64)))
    st = apply_strategy(sam, cfg)
    if strategy == "lora":  # peft starts B at zero; the test must see LoRA move the output
        assert all(".lora_" in n for n in st.trainable_state())
    before = {k: v.clone() for k, v in sam.state_dict().items()}
    ds = load_dataset(tiny_data)
    items = [prepare_sample(ds.load(i), 64, np.random.default_rng(i), PromptConfig(box_prob=1.0), 2) for i in (0, 3)]
    batch = collate(items)
    opt = torch.optim.AdamW([{"params": g["params"], "lr": 1e-3} for g in st.groups], weight_decay=0.0)
    module = LossModule(sam).train()
    losses = []
    for _ in range(4):
        loss, _ = module(batch.images, batch.items)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
    after = sam.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    wrong = sorted(k for k in changed if not _expected_changed(k, strategy))
    missing = sorted(k for k, p in sam.named_parameters() if _expected_changed(k, strategy) and not p.requires_grad)
    assert not wrong, wrong[:5]
    assert not missing, missing[:5]
    assert changed, "nothing trained"


def test_lora_pattern_is_anchored_and_skips_patch_embed():
    cfg = tiny_config("d", "o", lora_blocks=[0, 2])
    sam = build_sam(arch_for("vit_t", 64))
    st = apply_strategy(sam, cfg)
    adapted = {n.rsplit(".lora_", 1)[0] for n in st.trainable_state() if ".lora_" in n}
    encoder = {n for n in adapted if n.startswith("image_encoder.")}
    assert encoder == {f"image_encoder.blocks.{b}.attn.{m}" for b in (0, 2) for m in ("qkv", "proj")}
    # the decoder is LoRA'd too by default (decoder_mode lora), only in its transformer's attention
    decoder = adapted - encoder
    assert decoder and all(n.startswith("mask_decoder.transformer.") and n.endswith("_proj") for n in decoder)
    assert "patch_embed" not in lora_target_pattern(cfg)


def test_bad_lora_blocks_named():
    with pytest.raises(ValueError, match="lora_blocks"):
        apply_strategy(build_sam(arch_for("vit_t", 64)), tiny_config("d", "o", lora_blocks=[9]))


def test_gradient_checkpointing_gives_the_same_gradients(tiny_data):
    from edgesam.train.run import enable_gradient_checkpointing

    ds = load_dataset(tiny_data)
    batch = collate([prepare_sample(ds.load(1), 64, np.random.default_rng(0), PromptConfig(box_prob=1.0), 2)])
    grads = []
    for ckpt in (False, True):
        torch.manual_seed(0)
        sam = use_efficient_attention(build_sam(arch_for("vit_t", 64)))
        if ckpt:
            enable_gradient_checkpointing(sam)
        loss, _ = LossModule(sam).train()(batch.images, batch.items)
        loss.backward()
        grads.append(sam.image_encoder.blocks[0].attn.qkv.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=GRAD_CHECKPOINT_ATOL)
