"""Reading and writing SAM checkpoints: safe, strict, and loud about mismatches.

- Loading never executes pickled code: `.pth` goes through `torch.load(weights_only=True)`,
  `.safetensors` through safetensors.
- Keys must match the model exactly; a mismatch raises `CheckpointError` naming the missing and
  unexpected keys and the shapes that differ.
- A checkpoint of an official shape, used on the whole image, is written as the plain state dict that
  `segment_anything.sam_model_registry[variant](checkpoint=...)` loads. Any other shape (small
  variant, other image size, pruned) or framing (ROI crops, dense box prompt) records its `ArchConfig`
  under the key `edgesam_arch` (a JSON string; in safetensors, in the metadata) so it reloads without
  naming the model, and is used as it was trained.
"""
from __future__ import annotations

import json
import pickletools
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F

from edgesam_runtime import schema
from edgesam.models.registry import VARIANTS, ArchConfig
from edgesam_runtime.roi import framing_of
from edgesam_runtime.files import atomic_path

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
    arch = _recorded_arch(arch_json, path) if arch_json else None
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: expected a state dict of tensors; non-tensor entries: {bad[:_MAX_LISTED]}")
    # NaN or infinite weights: a diverged run or a corrupt file. Loading it would answer every prompt with NaN
    # scores and empty masks (and write NaN into JSON that no reader accepts), so it is refused here.
    nonfinite = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite:
        raise CheckpointError(f"{path}: {len(nonfinite)} weight tensor(s) hold NaN or infinite values "
                              f"({', '.join(nonfinite[:3])}{', ...' if len(nonfinite) > 3 else ''}); a diverged run or a corrupt checkpoint")
    return state, arch


def _recorded_arch(arch_json, path: Path) -> ArchConfig:
    """The architecture a checkpoint records, parsed and checked like every file edgesam reads."""
    where = f"{path}: {ARCH_KEY}"
    if not isinstance(arch_json, str):
        raise CheckpointError(f"{where}: expected a JSON text, got {type(arch_json).__name__}")
    arch = ArchConfig.from_dict(schema.parse_json(arch_json, where, CheckpointError), where, CheckpointError)
    try:
        framing_of(arch)
    except ValueError as exc:
        raise CheckpointError(f"{where}: {exc}") from None
    return arch


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
    except Exception as exc:  # torch reports each kind of bad file differently; say which kind it is
        raise CheckpointError(f"{path}: {diagnose_unreadable(path, exc)}") from exc


# What a file that torch.load refused holds, from its bytes alone (nothing is unpickled).
_ZIP_MAGIC = b"PK\x03\x04"
_SAFE_GLOBAL_MODULES = ("torch", "collections")  # what torch.save itself writes into a state dict
_REFUSED = ("refused: it holds pickled objects other than tensors{what}, and loading them would run code from "
            "the file; re-save it as a plain state dict (or .safetensors) from code you trust")


def diagnose_unreadable(path: Path, exc: BaseException) -> str:
    """Why `path` is not a loadable PyTorch checkpoint, worded for the person who has to fix it."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(512)
    first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
    if not head:
        return "empty file (0 bytes): the copy or download did not finish; fetch the checkpoint again"
    if head.startswith(_ZIP_MAGIC):
        pickled = _zip_pickle(path)
        if pickled is None:
            return ("truncated or corrupt: a zip archive (PyTorch's format) whose index is missing or damaged, "
                    "as when a copy or download is cut short; fetch the checkpoint again")
        return _pickle_verdict(pickled, first_line)
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        with open(path, "rb") as f:  # the legacy format: a pickle first (streamed, never loaded)
            return _pickle_verdict(f, first_line)
    if head[8:9] == b"{" and int.from_bytes(head[:8], "little") < size:
        return "a safetensors file with another extension; rename it to .safetensors"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file, not a checkpoint (an error page saved by a failed download?); fetch the checkpoint again"
    return ("not a PyTorch checkpoint: the bytes are neither a zip archive nor a pickle (random data, or another "
            "format); expected a .pth/.pt written by torch.save, or a .safetensors file")


def _zip_pickle(path: Path) -> bytes | None:
    """The pickle inside a torch.save zip archive; None when the archive cannot be read."""
    try:
        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
            return archive.read(name) if name else b""
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None


def _pickle_verdict(pickled, torch_message: str) -> str:
    """Refused for code (naming the first foreign global), or corrupt when the pickle does not parse."""
    strings, foreign = [], None
    try:
        for opcode, arg, _ in pickletools.genops(pickled):
            if isinstance(arg, str):
                strings.append(arg)
            name = opcode.name
            if name in ("GLOBAL", "INST"):
                found = arg.replace(" ", ".")
            elif name == "STACK_GLOBAL" and len(strings) >= 2:
                found = f"{strings[-2]}.{strings[-1]}"
            else:
                continue
            if foreign is None and found.split(".")[0] not in _SAFE_GLOBAL_MODULES:
                foreign = found
    except ValueError:  # pickletools: unknown opcode, or the data ends before the pickle's STOP
        return ("truncated or corrupt: its pickled data does not parse (a damaged or incomplete copy?); "
                "fetch the checkpoint again")
    if foreign is not None:
        return _REFUSED.format(what=f" (e.g. {foreign})")
    return f"not a loadable state dict of tensors ({torch_message})"


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
        raise CheckpointError(f"{path}: does not fit the model: " + "; ".join(parts)
                              + " (a checkpoint of another architecture or input size?)")
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
        try:
            if path.suffix == ".safetensors":
                from safetensors.torch import save_file

                save_file(state, str(tmp), metadata=None if plain else {ARCH_KEY: arch_json})
            else:
                if not plain:
                    state[ARCH_KEY] = arch_json
                torch.save(state, tmp)
        except (OSError, RuntimeError) as exc:  # torch's writer reports a full disk as a RuntimeError
            raise CheckpointError(f"{path}: could not be written ({_write_failure(exc)}); free some space "
                                  "(or write elsewhere) and rerun") from None
    return path


def _write_failure(exc: BaseException) -> str:
    """What went wrong in a failed checkpoint write, in one short phrase."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = " ".join(str(exc).split())
    return "file write failed: disk full or file size limit?" if "write" in text.lower() else text[:200]
