"""merge: parity with a non-zero adapter, merged != base, stock-loadable vit_b, refused wrong base."""
import pytest
import torch
from segment_anything import sam_model_registry

from edgesam.models import arch_for, build_sam, create_model, save_checkpoint
from edgesam.train.adapter import read_adapter, write_adapter
from edgesam.train.merge import MergeError, merge_run, probe_logits
from edgesam.train.run import adapter_meta
from edgesam.train.strategies import apply_strategy
from edgesam_runtime.files import sha256_file
from tests.tolerances import MERGE_LOGITS_ATOL
from tests.train.conftest import tiny_config


def _make_run(tmp_path, sam, arch, cfg, seed=0, scale=0.5):
    """Base checkpoint + adapter with perturbed (non-zero) LoRA B, as a trained run would leave."""
    base = tmp_path / "base.pth"
    save_checkpoint(sam, base, arch)
    st = apply_strategy(sam, cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sam.named_parameters():
            if ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=g) * scale)
    run = tmp_path / "run"
    write_adapter(run, st.trainable_state(), adapter_meta(cfg, arch, base.resolve(), sha256_file(base), st))
    return run, base, st


def test_merge_parity_vit_t(tmp_path):
    torch.manual_seed(0)
    arch = arch_for("vit_t", 64)
    sam = build_sam(arch)
    base_logits = probe_logits(sam, 64)["decoder_logits"]
    cfg = tiny_config("d", tmp_path, strategy="lora", decoder_mode="frozen")
    run, _, _ = _make_run(tmp_path, sam, arch, cfg)
    adapted_logits = probe_logits(sam.eval(), 64)["decoder_logits"]  # the LoRA-injected model before merging
    report = merge_run(run, tmp_path / "merged.pth")
    merged = create_model(checkpoint=tmp_path / "merged.pth")
    merged_logits = probe_logits(merged, 64)["decoder_logits"]
    assert (merged_logits - adapted_logits).abs().max() < MERGE_LOGITS_ATOL
    assert (merged_logits - base_logits).abs().max() > 100 * MERGE_LOGITS_ATOL
    assert not report.plain and report.max_diff_merged_vs_base > report.tolerance
    assert not any("lora" in k for k in torch.load(tmp_path / "merged.pth", weights_only=True))


def test_merge_refuses_zero_adapter_and_wrong_base(tmp_path):
    torch.manual_seed(0)
    arch = arch_for("vit_t", 64)
    sam = build_sam(arch)
    cfg = tiny_config("d", tmp_path, strategy="lora", decoder_mode="frozen")
    run, base, st = _make_run(tmp_path, sam, arch, cfg)
    other = tmp_path / "other.pth"
    save_checkpoint(build_sam(arch), other, arch)
    with pytest.raises(MergeError, match="base_sha256"):
        merge_run(run, tmp_path / "m.pth", base=other)
    zero = {k: (torch.zeros_like(v) if ".lora_B." in k else v) for k, v in st.trainable_state().items()}
    write_adapter(run, zero, read_adapter(run)[1])
    with pytest.raises(MergeError, match="does not change"):
        merge_run(run, tmp_path / "m.pth")
    assert not (tmp_path / "m.pth").exists()


@pytest.mark.slow
def test_merged_vit_b_loads_into_segment_anything_strictly(tmp_path):
    torch.manual_seed(0)
    sam = sam_model_registry["vit_b"]()
    arch = arch_for("vit_b")
    cfg = tiny_config("d", tmp_path, model="vit_b", image_size=None, strategy="lora", lora_blocks=[0, 11],
                      lora_rank=2, decoder_mode="frozen")
    run, _, _ = _make_run(tmp_path, sam, arch, cfg)
    report = merge_run(run, tmp_path / "merged_vit_b.pth", verify="layers")  # 3 full ViT-B passes take minutes here
    assert report.plain and report.max_diff_merged_vs_adapted <= report.tolerance
    stock = sam_model_registry["vit_b"](checkpoint=str(tmp_path / "merged_vit_b.pth"))  # strict load_state_dict
    base_qkv = torch.load(tmp_path / "base.pth", weights_only=True)["image_encoder.blocks.0.attn.qkv.weight"]
    assert not torch.equal(stock.image_encoder.blocks[0].attn.qkv.weight, base_qkv)
