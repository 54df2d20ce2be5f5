"""Registry and checkpoints: strict loading of official-shaped state dicts, clear refusals."""
import json
import pickle

import pytest
import torch
from segment_anything import sam_model_registry

from edgesam.models import (
    VARIANTS, ArchConfig, CheckpointError, arch_for, build_sam, count_parameters, create_model, load_model,
    read_checkpoint, save_checkpoint,
)


@pytest.fixture(scope="module")
def vit_b_state(tmp_path_factory):
    """A state dict exactly as segment-anything's own builder produces it (what official files hold)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "sam_vit_b.pth"
    torch.save(sam_model_registry["vit_b"]().state_dict(), path)
    return path


@pytest.mark.slow
def test_official_state_dict_loads_strictly(vit_b_state):
    model, arch = load_model(checkpoint=vit_b_state)
    assert arch.variant == "vit_b" and arch.image_size == 1024
    ref = torch.load(vit_b_state, weights_only=True)
    got = model.state_dict()
    assert set(got) == set(ref)
    assert all(torch.equal(got[k], ref[k]) for k in ("image_encoder.pos_embed", "mask_decoder.iou_prediction_head.layers.2.bias"))


@pytest.mark.slow
def test_renamed_key_is_refused_with_names(vit_b_state, tmp_path):
    state = torch.load(vit_b_state, weights_only=True)
    state["image_encoder.blocks.0.attn.qkv.weights"] = state.pop("image_encoder.blocks.0.attn.qkv.weight")
    bad = tmp_path / "renamed.pth"
    torch.save(state, bad)
    with pytest.raises(CheckpointError) as err:
        create_model("vit_b", bad)
    msg = str(err.value)
    assert "missing keys (1): image_encoder.blocks.0.attn.qkv.weight" in msg
    assert "unexpected keys (1): image_encoder.blocks.0.attn.qkv.weights" in msg
    assert str(bad) in msg


@pytest.mark.slow
def test_shape_mismatch_and_wrong_variant_are_named(tmp_path):
    arch = arch_for("vit_t", 64)
    path = save_checkpoint(build_sam(arch), tmp_path / "t.pth", arch)
    state, _ = read_checkpoint(path)
    state["mask_decoder.iou_token.weight"] = torch.zeros(2, 256)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"mask_decoder.iou_token.weight: checkpoint \(2, 256\) vs model \(1, 256\)"):
        create_model(checkpoint=tmp_path / "shape.pth", image_size=64)
    with pytest.raises(CheckpointError, match="holds a vit_t model"):
        create_model("vit_b", path)


@pytest.mark.slow
def test_small_variant_records_its_architecture(tmp_path):
    arch = arch_for("vit_t", 128).replace(extra={"init": "random"})
    model = build_sam(arch)
    for suffix in (".pth", ".safetensors"):
        path = save_checkpoint(model, tmp_path / f"small{suffix}", arch)
        loaded, got = load_model(checkpoint=path)  # no --model needed
        assert got == arch and got.extra == {"init": "random"}
        assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


@pytest.mark.slow
def test_official_shape_is_saved_plain_and_stock_loadable(vit_b_state, tmp_path):
    model = create_model(checkpoint=vit_b_state)
    out = save_checkpoint(model, tmp_path / "plain.pth", VARIANTS["vit_b"])
    assert "edgesam_arch" not in torch.load(out, weights_only=True)
    sam_model_registry["vit_b"](checkpoint=str(out))  # strict load inside segment-anything


@pytest.mark.slow
def test_image_size_option_resizes_position_tables(vit_b_state):
    model = create_model(checkpoint=vit_b_state, image_size=512)
    enc = model.image_encoder
    assert enc.img_size == 512 and enc.pos_embed.shape == (1, 32, 32, 768)
    assert enc.blocks[2].attn.rel_pos_h.shape == (63, 64)  # global block: 2 * 32 - 1
    assert enc.blocks[0].attn.rel_pos_h.shape == (27, 64)  # windowed block: unchanged 2 * 14 - 1
    out = model.image_encoder(torch.zeros(1, 3, 512, 512))
    assert out.shape == (1, 256, 32, 32)


def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"x": Evil()}, f)
    torch.save({"a": Evil()}, tmp_path / "evil2.pth")
    for p in (path, tmp_path / "evil2.pth"):
        with pytest.raises(CheckpointError, match="refused|not a readable"):
            read_checkpoint(p)


def test_corrupt_and_adapter_checkpoints_are_refused(tmp_path):
    arch = arch_for("vit_t", 64)
    good = save_checkpoint(build_sam(arch), tmp_path / "good.pth", arch)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pth"):
        read_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.pth")
    torch.save({"image_encoder.blocks.0.attn.qkv.lora_A.default.weight": torch.zeros(1)}, tmp_path / "lora.pth")
    with pytest.raises(CheckpointError, match="edgesam merge"):
        read_checkpoint(tmp_path / "lora.pth")


def test_common_wrappers_are_unwrapped(tmp_path):
    arch = arch_for("vit_t", 64)
    state = build_sam(arch).state_dict()
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "edgesam_arch": json.dumps(arch.to_dict())}, tmp_path / "w.pth")
    state2, got = read_checkpoint(tmp_path / "w.pth")
    assert set(state2) == set(state)


def test_pruned_architecture_builds_smaller_model():
    base = arch_for("vit_t", 64)
    pruned = base.replace(block_heads=(2,) * base.depth, block_mlp_dims=(384,) * base.depth)
    small, full = build_sam(pruned), build_sam(base)
    assert pruned.is_pruned and not pruned.is_official_shape
    assert small.image_encoder.blocks[0].attn.qkv.weight.shape == (3 * 2 * 64, 192)
    assert count_parameters(small) < count_parameters(full)
    assert small.image_encoder(torch.zeros(1, 3, 64, 64)).shape == (1, 256, 4, 4)
    assert ArchConfig.from_dict(json.loads(json.dumps(pruned.to_dict()))) == pruned


def test_arch_validation_messages():
    with pytest.raises(ValueError, match="unknown variant 'vit_x'"):
        arch_for("vit_x")
    with pytest.raises(ValueError, match="image_size: expected a multiple of 16"):
        arch_for("vit_t", 100)
    with pytest.raises(ValueError, match="block_heads: expected 6 entries"):
        arch_for("vit_t").replace(block_heads=(1, 2))


@pytest.mark.slow
def test_a_checkpoint_write_that_fails_midway_names_the_file_and_leaves_nothing(tmp_path):
    """A full disk, simulated by a file-size limit: torch's writer fails with a RuntimeError."""
    import subprocess
    import sys

    code = f"""
import resource, signal, sys
import torch
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
from edgesam.cli.errors import describe
from edgesam.models import arch_for, save_checkpoint
try:
    save_checkpoint({{"w": torch.zeros(1 << 20)}}, {str(tmp_path / "big.pth")!r}, arch_for("vit_t"), plain=False)
except Exception as exc:
    print(type(exc).__name__, describe(exc))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("CheckpointError "), result.stdout + result.stderr
    assert "big.pth: could not be written" in result.stdout and "internal error" not in result.stdout
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone, no half checkpoint under the name
