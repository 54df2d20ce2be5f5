"""The adapter folder is a peft adapter: peft writes the same files, loads them onto the base Sam, and the
result computes what the project's adapted model computes; runs without LoRA still carry and merge."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from edgesam.models import arch_for, build_sam, create_model, load_model, save_checkpoint
from edgesam.train import finetune
from edgesam.train.adapter import (ADAPTER_DIR, EXTRA_WEIGHTS, META, PEFT_CONFIG, PEFT_WEIGHTS, load_adapted,
                                   read_adapter, write_adapter)
from edgesam.train.loop import load_trainable
from edgesam.train.merge import MergeError, merge_run, probe_logits
from edgesam.train.run import BEST, adapter_meta
from edgesam.train.strategies import apply_strategy
from edgesam_runtime.files import sha256_file
from tests.tolerances import MERGE_LOGITS_ATOL, PEFT_LOAD_LOGITS_ATOL
from tests.train.conftest import tiny_config


def _perturbed(tensors, match, seed=0, scale=0.5):
    """A copy of `tensors` with every name containing `match` replaced by seeded noise (a non-zero adapter)."""
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.randn(v.shape, generator=g) * scale if match in k else v.clone()) for k, v in tensors.items()}


def _sam_outputs(model):
    """Low-res logits and IoU scores of `Sam.forward` (what a peft user calls) on a fixed image and box."""
    g = torch.Generator().manual_seed(1)
    image = torch.randint(0, 256, (3, 64, 64), generator=g).float()
    batch = [{"image": image, "original_size": (64, 64), "boxes": torch.tensor([[8.0, 8.0, 40.0, 48.0]])}]
    with torch.no_grad():
        out = model(batch, multimask_output=True)[0]
    return torch.cat([out["low_res_logits"].flatten(), out["iou_predictions"].flatten()])


@pytest.mark.slow
def test_peft_loads_a_lora_run_onto_its_base(tiny_data, tmp_path):
    from peft import PeftModel

    cfg = tiny_config(tiny_data, tmp_path / "run", strategy="lora", decoder_mode="train", max_steps=1,
                      val_max_images=1)
    run = tmp_path / "run"
    finetune(cfg, progress=False)
    # one step barely moves LoRA B from zero: rewrite the run's adapter with a clearly non-zero one
    trained = torch.load(run / BEST, weights_only=True)["trainable"]
    tensors = _perturbed(trained, ".lora_B.")
    write_adapter(run, tensors, read_adapter(run)[1])

    folder = run / ADAPTER_DIR
    assert sorted(p.name for p in folder.iterdir()) == [PEFT_CONFIG, PEFT_WEIGHTS, META]
    peft_config = json.loads((folder / PEFT_CONFIG).read_text())
    assert peft_config["peft_type"] == "LORA" and peft_config["modules_to_save"] == ["mask_decoder"]
    assert (peft_config["r"], peft_config["lora_alpha"]) == (cfg.lora_rank, cfg.lora_alpha)
    meta = json.loads((folder / META).read_text())
    assert meta["base_sha256"] == sha256_file(run / "base.pth") and meta["arch"]["extra"]["init"] == "random"
    assert meta["arch"]["image_size"] == 64 and "lora" not in meta  # the LoRA settings live in peft's config only
    assert {"strategy", "epoch", "val_miou", "val_dice", "base_checkpoint"} <= meta.keys()
    back, _ = read_adapter(run)
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) for k in tensors)

    project, _ = load_model(None, run / "base.pth")  # the project's adapted model, without peft's files
    apply_strategy(project, cfg)
    load_trainable(project, tensors)
    project.eval()
    base, _ = load_model(None, run / "base.pth")
    base_out = _sam_outputs(base.eval())
    peft_model = PeftModel.from_pretrained(base, str(folder))  # what the README tells peft users to write
    peft_model.eval()
    peft_out, project_out = _sam_outputs(peft_model), _sam_outputs(project)
    assert (peft_out - project_out).abs().max() <= PEFT_LOAD_LOGITS_ATOL
    assert (peft_out - base_out).abs().max() > 100 * MERGE_LOGITS_ATOL  # the adapter is not a no-op

    merge_run(run, tmp_path / "merged.pth")
    merged = create_model(checkpoint=tmp_path / "merged.pth")
    assert (_sam_outputs(merged) - peft_out).abs().max() < MERGE_LOGITS_ATOL


@pytest.mark.slow
def test_written_files_are_what_peft_save_pretrained_writes(tmp_path):
    import peft.utils

    torch.manual_seed(0)
    arch = arch_for("vit_t", 64)
    sam = build_sam(arch)
    save_checkpoint(sam, tmp_path / "base.pth", arch)
    cfg = tiny_config("d", tmp_path, strategy="lora", decoder_mode="lora", lora_mlp=True)
    st = apply_strategy(sam, cfg)
    load_trainable(sam, _perturbed(st.trainable_state(), ".lora_B."))
    meta = adapter_meta(cfg, arch, tmp_path / "base.pth", sha256_file(tmp_path / "base.pth"), st)
    write_adapter(tmp_path / "ours", st.trainable_state(), meta)
    st.peft_model.save_pretrained(str(tmp_path / "peft"))
    assert (PEFT_CONFIG, PEFT_WEIGHTS) == (peft.utils.CONFIG_NAME, peft.utils.SAFETENSORS_WEIGHTS_NAME)
    ours, theirs = tmp_path / "ours" / ADAPTER_DIR, tmp_path / "peft"
    assert json.loads((ours / PEFT_CONFIG).read_text()) == json.loads((theirs / PEFT_CONFIG).read_text())
    a, b = load_file(str(ours / PEFT_WEIGHTS)), load_file(str(theirs / PEFT_WEIGHTS))
    assert a.keys() == b.keys() and any(".mask_decoder." in k for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a) and any(b[k].abs().max() > 0 for k in b if ".lora_B." in k)


@pytest.mark.parametrize("strategy, decoder_mode, perturb, files", [
    ("decoder", "train", ("mask_decoder.output_hypernetworks_mlps",), [META, EXTRA_WEIGHTS]),  # no LoRA: no peft
    ("partial", "lora", (".lora_B.", "image_encoder.blocks.5."), [PEFT_CONFIG, PEFT_WEIGHTS, META, EXTRA_WEIGHTS]),
])
@pytest.mark.slow
def test_runs_beyond_lora_carry_their_tensors_and_merge(tmp_path, strategy, decoder_mode, perturb, files):
    torch.manual_seed(0)
    arch = arch_for("vit_t", 64)
    sam = build_sam(arch)
    save_checkpoint(sam, tmp_path / "base.pth", arch)
    base_logits = probe_logits(sam, 64)["decoder_logits"]
    cfg = tiny_config("d", tmp_path, strategy=strategy, decoder_mode=decoder_mode, partial_blocks=1)
    st = apply_strategy(sam, cfg)
    tensors = st.trainable_state()
    for i, match in enumerate(perturb):
        tensors = _perturbed(tensors, match, seed=i, scale=0.2)
    load_trainable(sam, tensors)
    adapted_logits = probe_logits(sam.eval(), 64)["decoder_logits"]
    run = tmp_path / "run"
    write_adapter(run, tensors, adapter_meta(cfg, arch, tmp_path / "base.pth", sha256_file(tmp_path / "base.pth"), st))
    assert sorted(p.name for p in (run / ADAPTER_DIR).iterdir()) == sorted(files)
    back, _ = read_adapter(run)
    assert back.keys() == tensors.keys() and all(torch.equal(back[k], tensors[k]) for k in tensors)
    report = merge_run(run, tmp_path / "merged.pth")
    merged_logits = probe_logits(create_model(checkpoint=tmp_path / "merged.pth"), 64)["decoder_logits"]
    assert report.strategy == strategy
    assert (merged_logits - adapted_logits).abs().max() < MERGE_LOGITS_ATOL
    assert (merged_logits - base_logits).abs().max() > 100 * MERGE_LOGITS_ATOL


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Found missing adapter keys")  # peft only warns; the test is that we refuse
def test_a_peft_tensor_that_does_not_load_is_refused(tmp_path):
    torch.manual_seed(0)
    arch = arch_for("vit_t", 64)
    sam = build_sam(arch)
    save_checkpoint(sam, tmp_path / "base.pth", arch)
    cfg = tiny_config("d", tmp_path, strategy="lora", decoder_mode="frozen")
    st = apply_strategy(sam, cfg)
    run = tmp_path / "run"
    write_adapter(run, _perturbed(st.trainable_state(), ".lora_B."),
                  adapter_meta(cfg, arch, tmp_path / "base.pth", sha256_file(tmp_path / "base.pth"), st))
    weights = run / ADAPTER_DIR / PEFT_WEIGHTS
    tensors = load_file(str(weights))
    key = next(k for k in tensors if ".blocks.0.attn.qkv.lora_B" in k)
    tensors[key.replace(".blocks.0.", ".blocks.99.")] = tensors.pop(key)  # names a layer the base lacks
    save_file(tensors, str(weights))
    with pytest.raises(ValueError, match="did not load"):
        load_adapted(build_sam(arch), run)
    with pytest.raises(MergeError, match="does not fit"):
        merge_run(run, tmp_path / "m.pth")
    assert not (tmp_path / "m.pth").exists()


def test_old_layout_asks_for_a_new_finetune(tmp_path):
    folder = tmp_path / ADAPTER_DIR
    folder.mkdir()
    (folder / "adapter.safetensors").write_bytes(b"")
    (folder / "adapter_config.json").write_text(json.dumps({"format": "edgesam-adapter/1"}))
    with pytest.raises(ValueError, match=r"adapter\.safetensors.*re-run finetune"):
        merge_run(tmp_path, tmp_path / "m.pth")
