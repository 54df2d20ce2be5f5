"""The adapter folder of a finetune run: a peft LoRA adapter, and edgesam's own record beside it.

    <run>/adapter/
      adapter_config.json          peft's LoraConfig, written by peft itself        } only when the run
      adapter_model.safetensors    LoRA A/B under peft's key names, and the fully   } trains LoRA layers
                                   trained mask decoder as peft `modules_to_save`   }
      edgesam_weights.safetensors  trained tensors peft does not carry, under the Sam state-dict names
                                   (strategies decoder/partial/full; absent when there are none)
      edgesam_adapter.json         the base checkpoint's path and sha256, the architecture (input framing
                                   and init included), strategy, epoch and validation figures; written last

So `PeftModel.from_pretrained(sam, "<run>/adapter")` loads a LoRA run onto its base Sam. A run without
LoRA layers has no peft files: peft refuses a config that adapts no module, so its trained tensors
(a decoder, encoder blocks, a whole model) are edgesam's own file. The LoRA settings live only in peft's
config; `read_adapter` returns them in edgesam's terms.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from segment_anything.modeling import Sam

from edgesam.models.refiner import attach_refiner
from edgesam.models.registry import ArchConfig
from edgesam.train.loop import load_trainable
from edgesam.train.strategies import peft_lora_config
from edgesam_runtime import schema
from edgesam_runtime.files import atomic_path, write_json_atomic
from edgesam_runtime.roi import refine_spec_of

ADAPTER_DIR = "adapter"
PEFT_CONFIG = "adapter_config.json"  # peft.utils.CONFIG_NAME
PEFT_WEIGHTS = "adapter_model.safetensors"  # peft.utils.SAFETENSORS_WEIGHTS_NAME
EXTRA_WEIGHTS = "edgesam_weights.safetensors"
META = "edgesam_adapter.json"
FORMAT = "edgesam-adapter/2"
OLD_FORMAT_FILES = ("adapter.safetensors",)  # edgesam-adapter/1 wrote its own schema, unreadable by peft

# peft names a wrapped model's tensors from the PeftModel (`base_model.model.` + the Sam name) and drops
# the adapter's name ("default" while training) from LoRA keys in the files it saves.
PEFT_PREFIX = "base_model.model."
ADAPTER_NAME = "default"
# Modules trained whole beside LoRA that peft carries as `modules_to_save`: the decoder (decoder_mode
# train). The encoder tensors of a partial or full run beside a decoder LoRA stay in edgesam's file:
# they span blocks, the neck and the encoder's own pos_embed, so peft would need a per-strategy module
# list and, for full, a second copy of the whole encoder.
PEFT_MODULES_TO_SAVE = ("mask_decoder",)
_LORA_KEY = re.compile(r"\.(lora_[AB])\.")


def is_lora_key(name: str) -> bool:
    return ".lora_" in name


def to_peft_key(name: str) -> str:
    """Sam parameter name in the training model -> key in peft's adapter_model.safetensors."""
    return PEFT_PREFIX + (name.replace(f".{ADAPTER_NAME}.", ".") if is_lora_key(name) else name)


def from_peft_key(key: str) -> str:
    name = key[len(PEFT_PREFIX):]
    return _LORA_KEY.sub(rf".\1.{ADAPTER_NAME}.", name) if is_lora_key(name) else name


def _carried_by_peft(name: str) -> bool:
    return is_lora_key(name) or name.split(".", 1)[0] in PEFT_MODULES_TO_SAVE


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    with atomic_path(path) as tmp:  # "format": "pt" is the metadata peft's own files carry
        save_file({k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata={"format": "pt"})


def _save_peft_config(folder: Path, lora: dict, modules_to_save: list[str]) -> None:
    """peft's LoraConfig saved by peft, with the fields `PeftModel.save_pretrained` sets on a Sam."""
    config = peft_lora_config(lora, modules_to_save or None)
    config.inference_mode = True
    with tempfile.TemporaryDirectory(dir=folder, prefix=".peft-config.") as tmp:
        config.save_pretrained(tmp, auto_mapping_dict={"base_model_class": Sam.__name__,
                                                       "parent_library": Sam.__module__})
        os.replace(Path(tmp) / PEFT_CONFIG, folder / PEFT_CONFIG)


def write_adapter(run_dir: Path, tensors: dict[str, torch.Tensor], meta: dict) -> int:
    """Write the adapter folder (weights, then peft's config, then edgesam's record, each atomically).

    `tensors` are the trained parameters under the training model's names; `meta["lora"]` holds the
    LoRA settings (`strategies.lora_settings`) or None. Returns the bytes of the weight files.
    """
    folder = Path(run_dir) / ADAPTER_DIR
    folder.mkdir(parents=True, exist_ok=True)
    lora = meta.get("lora")
    in_peft = {k: v for k, v in tensors.items() if lora and _carried_by_peft(k)}
    extra = {k: v for k, v in tensors.items() if k not in in_peft}
    if any(is_lora_key(k) for k in extra):
        raise ValueError("trained tensors hold LoRA weights but meta['lora'] records no LoRA settings")
    written = []
    if in_peft:
        _save_tensors(folder / PEFT_WEIGHTS, {to_peft_key(k): v for k, v in in_peft.items()})
        _save_peft_config(folder, lora, sorted({k.split(".", 1)[0] for k in in_peft if not is_lora_key(k)}))
        written.append(PEFT_WEIGHTS)
    if extra:
        _save_tensors(folder / EXTRA_WEIGHTS, extra)
        written.append(EXTRA_WEIGHTS)
    size = sum((folder / name).stat().st_size for name in written)
    record = {k: v for k, v in meta.items() if k not in ("lora", "format", "weights", "tensors", "bytes")}
    write_json_atomic(folder / META, {"format": FORMAT, **record, "weights": written, "tensors": len(tensors),
                                      "bytes": size})
    return size


def adapter_bytes(run_dir: Path) -> int:
    """Bytes of the weight files an earlier session wrote (0 when there is no adapter yet)."""
    folder = Path(run_dir) / ADAPTER_DIR
    try:
        return sum((folder / name).stat().st_size for name in json.loads((folder / META).read_text())["weights"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _read_json(path: Path, schema_name: str | None = None) -> dict:
    data = schema.load_json(path, schema_name)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_meta(run_dir: Path) -> dict:
    """edgesam's record of the adapter (`edgesam_adapter.json`), checked for the fields readers rely on."""
    folder = Path(run_dir) / ADAPTER_DIR
    path = folder / META
    if not path.exists():
        old = [folder / n for n in OLD_FORMAT_FILES if (folder / n).exists()]
        if old:
            raise ValueError(f"{old[0]}: an adapter in the old edgesam-adapter/1 layout, which peft cannot read; "
                             f"re-run finetune to write {path}")
        raise FileNotFoundError(f"{path}: missing; is {run_dir} a finished `edgesam finetune` run dir?")
    meta = _read_json(path, "adapter")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: field 'format': expected {FORMAT!r}, got {meta.get('format')!r}")
    for key in ("strategy", "base_sha256", "base_checkpoint", "arch", "weights"):
        if key not in meta:
            raise ValueError(f"{path}: missing field {key!r}")
    for name in meta["weights"]:
        if name not in (PEFT_WEIGHTS, EXTRA_WEIGHTS):
            raise ValueError(f"{path}: field 'weights': unknown file {name!r}")
        if not (folder / name).exists():
            raise FileNotFoundError(f"{folder / name}: missing (listed in {path}, field 'weights')")
    if PEFT_WEIGHTS in meta["weights"] and not (folder / PEFT_CONFIG).exists():
        raise FileNotFoundError(f"{folder / PEFT_CONFIG}: missing beside {PEFT_WEIGHTS}")
    return meta


def read_lora_settings(run_dir: Path) -> dict:
    """The LoRA settings (edgesam's terms) from peft's adapter_config.json."""
    path = Path(run_dir) / ADAPTER_DIR / PEFT_CONFIG
    config = _read_json(path)
    keys = {"rank": "r", "alpha": "lora_alpha", "dropout": "lora_dropout", "target_modules": "target_modules"}
    missing = [field for field in keys.values() if field not in config]
    if config.get("peft_type") != "LORA" or missing:
        raise ValueError(f"{path}: expected a peft LoRA config (peft_type 'LORA' with {sorted(keys.values())}); "
                         f"got peft_type {config.get('peft_type')!r}, missing {missing}")
    return {ours: config[theirs] for ours, theirs in keys.items()}


def read_adapter(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """(trained tensors under the training model's names, meta) -- what `write_adapter` was given."""
    folder = Path(run_dir) / ADAPTER_DIR
    meta = read_meta(run_dir)
    tensors = {}
    if PEFT_WEIGHTS in meta["weights"]:
        meta["lora"] = read_lora_settings(run_dir)
        peft_tensors = _load_weights(folder / PEFT_WEIGHTS)
        bad = [k for k in peft_tensors if not k.startswith(PEFT_PREFIX)]
        if bad:
            raise ValueError(f"{folder / PEFT_WEIGHTS}: key {bad[0]!r} lacks peft's prefix {PEFT_PREFIX!r}")
        tensors.update({from_peft_key(k): v for k, v in peft_tensors.items()})
    else:
        meta["lora"] = None
    if EXTRA_WEIGHTS in meta["weights"]:
        tensors.update(_load_weights(folder / EXTRA_WEIGHTS))
    return tensors, meta


def _load_weights(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for truncated or foreign files
        raise ValueError(f"{path}: not a readable safetensors file, corrupt or truncated ({e})") from None


def load_adapted(sam: torch.nn.Module, run_dir: Path):
    """Apply the run's adapter to the base `sam` in place: peft's own loader for the peft files, then
    edgesam's extra tensors. Returns the PeftModel (for `merge_and_unload`) or None without LoRA.

    peft loads leniently (a missing or unknown key is only a warning), so the adapted model's adapter
    tensors must be exactly the file's, by name and value.
    """
    folder = Path(run_dir) / ADAPTER_DIR
    meta = read_meta(run_dir)
    spec = refine_spec_of(ArchConfig.from_dict(meta["arch"]))
    if spec is not None and not hasattr(sam, "mask_refiner"):  # the run gave its base a refiner
        attach_refiner(sam, spec)
    peft_model = None
    if PEFT_WEIGHTS in meta["weights"]:
        from peft import PeftModel
        from peft.utils import get_peft_model_state_dict

        read_lora_settings(run_dir)  # a clear error for a config that is not a LoRA one
        peft_model = PeftModel.from_pretrained(sam, str(folder))
        loaded, saved = get_peft_model_state_dict(peft_model), _load_weights(folder / PEFT_WEIGHTS)
        for key in sorted(loaded.keys() ^ saved.keys()):
            where = "in the file but not in the adapted model" if key in saved else "of the adapted model missing"
            raise ValueError(f"{folder / PEFT_WEIGHTS}: tensor {key!r} {where}, so it did not load "
                             f"(is it the base the adapter was trained on?)")
        for key, value in saved.items():
            if not torch.equal(loaded[key].cpu(), value):
                raise ValueError(f"{folder / PEFT_WEIGHTS}: tensor {key!r} did not load unchanged")
    if EXTRA_WEIGHTS in meta["weights"]:
        load_trainable(sam, _load_weights(folder / EXTRA_WEIGHTS))
    sam.eval()
    return peft_model
