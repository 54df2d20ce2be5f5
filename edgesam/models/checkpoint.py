"""Reading and writing SAM checkpoints: safe, strict, and loud about mismatches.

- Loading never executes pickled code: `.pth` goes through `torch.load(weights_only=True)`,
  `.safetensors` through safetensors.
- Keys must match the model exactly; a mismatch raises `CheckpointError` naming the missing and
  unexpected keys and the shapes that differ (DESIGN.md, lesson 2).
- A checkpoint of an official shape, used on the whole image, is written as the plain state dict that
  `segment_anything.sam_model_registry[variant](checkpoint=...)` loads. Any other shape (small
  variant, other image size, pruned) or framing (ROI crops, dense box prompt) records its `ArchConfig`
  under the key `edgesam_arch` (a JSON string; in safetensors, in the metadata) so it reloads without
  naming the model, and is used as it was trained.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
import torch.nn.functional as F

from edgesam.models.registry import VARIANTS, ArchConfig
from edgesam.utils.files import atomic_path

ARCH_KEY = "edgesam_arch"
WRAPPER_KEYS = ("model", "state_dict", "model_state_dict")
_MAX_LISTED = 12


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or does not fit the model it is loaded into."""


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], ArchConfig | None]:
    """(state dict, recorded architecture or None) from a .pth/.pt or .safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    raw, arch_json = _read_raw(path)
    state = _unwrap(raw, path)
    arch_json = state.pop(ARCH_KEY, arch_json)
    arch = ArchConfig.from_dict(json.loads(arch_json)) if arch_json else None
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: expected a state dict of tensors; non-tensor entries: {bad[:_MAX_LISTED]}")
    return state, arch


def _read_raw(path: Path) -> tuple[dict, str | None]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                return {k: f.get_tensor(k) for k in f.keys()}, meta.get(ARCH_KEY)
        except Exception as exc:  # safetensors raises its own types for truncated headers
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=True), None
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused: the file holds pickled objects other than tensors, and loading it would run "
            f"code from the file. Re-save it as a plain state dict or safetensors. ({str(exc).splitlines()[0]})"
        ) from exc
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (corrupt or truncated?): {exc}") from exc


def _unwrap(raw, path: Path) -> dict:
    """Accept the common wrappers ({'model': sd}, DDP's 'module.' prefix); refuse unmerged adapters."""
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a dict state dict, got {type(raw).__name__}")
    for key in WRAPPER_KEYS:
        if key in raw and isinstance(raw[key], dict) and not any(isinstance(v, torch.Tensor) and k.startswith("image_encoder") for k, v in raw.items()):
            raw = raw[key]
            break
    state = dict(raw)
    tensor_keys = [k for k in state if k != ARCH_KEY]
    if tensor_keys and all(k.startswith("module.") for k in tensor_keys):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    lora = [k for k in state if "lora_" in k or ".base_layer." in k]
    if lora:
        raise CheckpointError(
            f"{path}: holds unmerged LoRA adapter keys (e.g. {lora[0]!r}); run `edgesam merge RUN_DIR --out merged.pth` "
            f"to fold the adapter into a plain SAM checkpoint first"
        )
    return state


def infer_arch(state: dict[str, torch.Tensor], path: str | Path = "checkpoint") -> ArchConfig:
    """Recognize an unannotated checkpoint (an official one) by its encoder width and input size."""
    key = "image_encoder.patch_embed.proj.weight"
    if key not in state:
        raise CheckpointError(f"{path}: no {key!r}; this is not a SAM state dict (first keys: {list(state)[:5]})")
    width = state[key].shape[0]
    matches = [a for a in VARIANTS.values() if a.embed_dim == width]
    if not matches:
        raise CheckpointError(f"{path}: encoder width {width} matches no variant ({ {v: a.embed_dim for v, a in VARIANTS.items()} })")
    arch = matches[0]
    pos = state.get("image_encoder.pos_embed")
    if pos is not None:
        arch = arch.replace(image_size=pos.shape[1] * arch.patch_size)
    return arch


def resize_for_image_size(state: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Interpolate the position embedding and relative-position tables to the model's input size.

    This lets a 1024 checkpoint serve a 512 or 256 edge model: pos_embed is resized bicubically on
    its token grid, rel_pos tables linearly along their length (as SAM's `get_rel_pos` does).
    """
    target = model.state_dict()
    out = dict(state)
    for key, value in state.items():
        if key not in target or target[key].shape == value.shape:
            continue
        want = target[key].shape
        if key.endswith("pos_embed") and value.dim() == 4:
            grid = value.permute(0, 3, 1, 2)
            out[key] = F.interpolate(grid, size=want[1:3], mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
        elif ".rel_pos_" in key and value.dim() == 2 and value.shape[1] == want[1]:
            table = value.t().unsqueeze(0)
            out[key] = F.interpolate(table, size=want[0], mode="linear").squeeze(0).t()
    return out


def load_state_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path = "checkpoint") -> None:
    """`load_state_dict(strict=True)` with an error that lists missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or shapes:
        parts = []
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shapes that differ", shapes)):
            if items:
                more = f" (+{len(items) - _MAX_LISTED} more)" if len(items) > _MAX_LISTED else ""
                parts.append(f"{title} ({len(items)}): " + ", ".join(items[:_MAX_LISTED]) + more)
        raise CheckpointError(f"{path}: does not fit the model.\n  " + "\n  ".join(parts))
    model.load_state_dict(state, strict=True)


def save_checkpoint(
    model_or_state, path: str | Path, arch: ArchConfig, plain: bool | None = None
) -> Path:
    """Write a checkpoint atomically. Official shapes default to a plain stock-loadable state dict."""
    path = Path(path)
    state = model_or_state.state_dict() if isinstance(model_or_state, torch.nn.Module) else dict(model_or_state)
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    plain = arch.is_stock_loadable if plain is None else plain
    arch_json = json.dumps(arch.to_dict())
    with atomic_path(path) as tmp:
        if path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file(state, str(tmp), metadata=None if plain else {ARCH_KEY: arch_json})
        else:
            if not plain:
                state[ARCH_KEY] = arch_json
            torch.save(state, tmp)
    return path
