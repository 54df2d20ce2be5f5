"""Adapter files: the trained tensors (safetensors) + a JSON recording how to rebuild the base.

`adapter/adapter.safetensors` holds every trained tensor under the Sam state-dict names (LoRA
`lora_A/lora_B` and, when trained, the full decoder weights), and `adapter/adapter_config.json` the
strategy, the LoRA config, the architecture and the base checkpoint's path and sha256, so
`merge` can refuse a different base.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from edgesam.utils.files import atomic_path, write_json_atomic

ADAPTER_DIR = "adapter"
WEIGHTS = "adapter.safetensors"
CONFIG = "adapter_config.json"
FORMAT = "edgesam-adapter/1"


def write_adapter(run_dir: Path, tensors: dict[str, torch.Tensor], meta: dict) -> int:
    """Write the adapter atomically (weights first, config last); returns the weights' size in bytes."""
    folder = Path(run_dir) / ADAPTER_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file({k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    size = (folder / WEIGHTS).stat().st_size
    write_json_atomic(folder / CONFIG, {"format": FORMAT, **meta, "tensors": len(tensors), "bytes": size})
    return size


def read_adapter(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict]:
    folder = Path(run_dir) / ADAPTER_DIR
    cfg_path, w_path = folder / CONFIG, folder / WEIGHTS
    for p in (cfg_path, w_path):
        if not p.exists():
            raise FileNotFoundError(f"{p}: missing; is {run_dir} a finished `edgesam finetune` run dir?")
    try:
        meta = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{cfg_path}: not valid JSON ({e})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{cfg_path}: field 'format': expected {FORMAT!r}, got {meta.get('format')!r}")
    for key in ("strategy", "base_sha256", "base_checkpoint", "arch"):
        if key not in meta:
            raise ValueError(f"{cfg_path}: missing field {key!r}")
    try:
        return load_file(str(w_path)), meta
    except Exception as e:  # safetensors raises its own error types for truncated or foreign files
        raise ValueError(f"{w_path}: not a readable safetensors file, corrupt or truncated ({e})") from None
