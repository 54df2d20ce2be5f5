"""`merge_run(run_dir, out_path)`: fold a run's adapter into its base weights and write a checkpoint.

Before anything is written it checks that (1) the adapter was trained on exactly this base
(sha256 recorded in adapter/edgesam_adapter.json), (2) the merged model's logits equal the adapted model's
within `MERGE_RTOL`, and (3) they differ from the base model's (an adapter with no effect, e.g. a
never-trained zero LoRA B, is refused rather than silently "merged"). Official shapes are written
as plain state dicts that `segment_anything.sam_model_registry[variant](checkpoint=...)` loads
strictly; other shapes via `save_checkpoint`, which records the architecture.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from edgesam.models import load_model, save_checkpoint
from edgesam.models.checkpoint import load_state_strict
from edgesam.models.decode import decode_all
from edgesam.train.adapter import ADAPTER_DIR, META, load_adapted, read_meta
from edgesam_runtime import geometry
from edgesam_runtime.files import sha256_file

# Merged W' = W + s*B@A computes x@W' instead of x@W + s*(x@A)@B: only float32 summation order
# differs, ~1e-6 relative per layer; 1e-3 of the logits' scale leaves room for 32-block encoders.
MERGE_RTOL = 1e-3
# The merged model must move the logits by at least this multiple of the tolerance to count as
# different from the base.
MIN_EFFECT_FACTOR = 10.0


class MergeError(RuntimeError):
    """A merge that would write a wrong or misleading checkpoint."""


@dataclass
class MergeReport:
    out_path: str
    strategy: str
    init: str
    variant: str
    image_size: int
    plain: bool  # stock-loadable plain state dict
    base_checkpoint: str
    base_sha256: str
    out_sha256: str
    out_bytes: int
    max_diff_merged_vs_adapted: float
    max_diff_merged_vs_base: float
    tolerance: float
    verify: str = "full"
    kept_start: bool = False  # the run's best is its starting model: the merged weights are the start's

    def to_dict(self):
        return asdict(self)


def probe_logits(sam, image_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Low-res logits (all 4 outputs) of a fixed random image with a box and a point prompt, and the
    refiner's logits of the first output where the model has a refiner."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, size=(image_size, image_size, 3), dtype=np.uint8)
    x, hw, _ = geometry.preprocess(image, image_size)
    q = image_size / 4
    coords, labels = geometry.build_prompt_arrays(
        np.array([[[2 * q, 2 * q]], [[q, 3 * q]]], np.float32), np.ones((2, 1), np.float32),
        np.array([[q, q, 3 * q, 3 * q], [0.5 * q, 2 * q, 2 * q, 3.5 * q]], np.float32), hw, image_size)
    with torch.no_grad():
        feats = sam.image_encoder(torch.from_numpy(x))
        low, _ = decode_all(sam, feats, torch.from_numpy(coords), torch.from_numpy(labels))
        out = {"decoder_logits": low}
        if hasattr(sam, "mask_refiner"):
            out["refined_logits"] = sam.mask_refiner(torch.from_numpy(x), low[:, :1])
    return out


def probe_layers(sam, seed: int = 0) -> dict[str, torch.Tensor]:
    """Outputs of every adapted/adaptable Linear in the encoder on fixed random inputs, plus the
    decoder's logits on a fixed random image embedding: cheap (no full encoder pass)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    with torch.no_grad():
        for name, mod in sam.image_encoder.named_modules():
            if name.endswith(("attn.qkv", "attn.proj", "mlp.lin1", "mlp.lin2")):
                w = mod.base_layer.weight if hasattr(mod, "base_layer") else mod.weight
                out[name] = mod(torch.randn(4, w.shape[1], generator=g))
        h, w = sam.prompt_encoder.image_embedding_size
        feats = torch.randn(1, sam.prompt_encoder.embed_dim, h, w, generator=g)
        s = sam.image_encoder.img_size / 4
        coords = torch.tensor([[[s, s], [3 * s, 3 * s]], [[2 * s, 2 * s], [0.0, 0.0]]])
        labels = torch.tensor([[2.0, 3.0], [1.0, -1.0]])
        out["decoder_logits"] = decode_all(sam, feats, coords, labels)[0]
        if hasattr(sam, "mask_refiner"):
            image = torch.randn(1, 3, sam.image_encoder.img_size, sam.image_encoder.img_size, generator=g)
            out["refined_logits"] = sam.mask_refiner(image, out["decoder_logits"][:, :1])
    return out


def _max_diff(a: dict, b: dict) -> float:
    """Largest difference over the probes both models answer (a base may lack the run's refiner)."""
    return max((a[k] - b[k]).abs().max().item() for k in a if k in b)


def _scale(a: dict) -> float:
    return max(v.abs().max().item() for v in a.values())


def merge_run(run_dir: str | Path, out_path: str | Path, base: str | Path | None = None,
              verify: str = "full", log=None) -> MergeReport:
    """Merge `run_dir`'s adapter into its base (or `base`, which must have the recorded hash).

    verify="full" compares end-to-end logits on a probe image (three encoder passes); "layers"
    compares every encoder Linear on random inputs and the decoder's logits on a random embedding,
    for large models on a CPU where three ViT-B/H passes at 1024 px take minutes. `log(message)`
    hears each phase as it starts (a large model takes minutes over them).
    """
    log = log or (lambda message: None)
    if verify not in ("full", "layers"):
        raise ValueError(f"verify: expected 'full' or 'layers', got {verify!r}")

    run_dir, out_path = Path(run_dir), Path(out_path)
    meta = read_meta(run_dir)
    record = run_dir / ADAPTER_DIR / META
    base_path = Path(base or meta["base_checkpoint"])
    if not base_path.exists():
        raise MergeError(f"{base_path}: base checkpoint not found (recorded in {record}, "
                         f"field 'base_checkpoint'); pass the same file with --base")
    log(f"checking {base_path} against the recorded sha256")
    sha = sha256_file(base_path)
    if sha != meta["base_sha256"]:
        raise MergeError(f"{base_path}: sha256 {sha[:12]}... does not match the base the adapter was trained on "
                         f"({meta['base_sha256'][:12]}..., field 'base_sha256' of {record})")
    log(f"loading the base model {base_path.name}")
    sam, arch = load_model(None, base_path)
    if meta["arch"]["image_size"] != arch.image_size:  # trained at another input size than the base file
        sam, arch = load_model(None, base_path, meta["arch"]["image_size"])
    probe = (lambda m: probe_logits(m, arch.image_size)) if verify == "full" else probe_layers
    log(f"probing the base model ({verify} check)")
    base_logits = probe(sam)
    try:
        peft_model = load_adapted(sam, run_dir)
    except (KeyError, ValueError, RuntimeError) as e:
        raise MergeError(f"{run_dir / ADAPTER_DIR}: does not fit the base model: {e}") from None
    log("probing the adapted model")
    adapted = probe(sam)
    log("merging the adapter into the weights and probing the merged model")
    merged_sam = peft_model.merge_and_unload() if peft_model is not None else sam
    merged = probe(merged_sam)
    tol = MERGE_RTOL * max(1.0, _scale(adapted))
    d_adapted, d_base = _max_diff(merged, adapted), _max_diff(merged, base_logits)
    if d_adapted > tol:
        raise MergeError(f"merged logits differ from the adapted model's by {d_adapted:.3g} > tolerance {tol:.3g}")
    kept_start = meta.get("epoch") == 0  # no epoch beat the start: its weights are what the run kept
    if kept_start:
        log(f"{run_dir}: no epoch beat the starting model, so the adapter holds the start's weights: the merged "
            "checkpoint is the model the run started from")
    elif d_base <= MIN_EFFECT_FACTOR * tol:
        raise MergeError(f"{run_dir}: the adapter does not change the model (max logit change {d_base:.3g}); "
                         f"nothing to merge")
    trained = meta["arch"].get("extra", {})  # init, framing, refiner and data as trained, over the base file's record
    arch = arch.replace(extra={**arch.extra, **{k: v for k, v in trained.items() if k in ("init", "framing", "refine", "trained_on")}})
    state = merged_sam.state_dict()
    log(f"writing {out_path} and reloading it strictly")
    save_checkpoint(state, out_path, arch)
    load_state_strict(load_model(None, out_path)[0], state, out_path)  # the written file reloads strictly
    return MergeReport(str(out_path), meta["strategy"], meta.get("init", "pretrained"), arch.variant, arch.image_size,
                       arch.is_stock_loadable, str(base_path), sha, sha256_file(out_path), out_path.stat().st_size,
                       d_adapted, d_base, tol, verify, kept_start)
