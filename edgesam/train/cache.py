"""Image-embedding cache for the `decoder` strategy (frozen image encoder).

Keyed by the sha256 of the preprocessed input tensor and of the encoder weights, so a changed
image, image size or encoder never serves a stale embedding. In memory by default, or on disk
(`cache_dir/<model hash>/<image hash>.pt`, written atomically) to reuse across runs.

Because the embedding is a function of the exact pixels, the decoder strategy trains without
image augmentation (prompts are still re-drawn every step): caching one embedding per augmented
variant would cost an encoder pass per variant, which is what the strategy exists to avoid.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from edgesam_runtime.files import atomic_path


def module_hash(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class EmbeddingCache:
    def __init__(self, encoder: torch.nn.Module, cache_dir: str | Path | None = None):
        self.encoder = encoder
        self.model_hash = module_hash(encoder)
        self.dir = Path(cache_dir) / self.model_hash if cache_dir else None
        self.memory: dict[str, torch.Tensor] = {}
        self.hits = self.misses = 0

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, C, S/16, S/16), computing only the images not seen before."""
        out = []
        for x in images:
            key = hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
            feat = self._get(key)
            if feat is None:
                self.misses += 1
                was_training = self.encoder.training
                self.encoder.eval()
                feat = self.encoder(x[None]).float().cpu()[0]
                self.encoder.train(was_training)
                self._put(key, feat)
            else:
                self.hits += 1
            out.append(feat)
        return torch.stack(out).to(images.device)

    def _get(self, key):
        if key in self.memory:
            return self.memory[key]
        if self.dir is not None and (self.dir / f"{key}.pt").exists():
            feat = torch.load(self.dir / f"{key}.pt", weights_only=True)
            self.memory[key] = feat
            return feat
        return None

    def _put(self, key, feat):
        self.memory[key] = feat
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.dir / f"{key}.pt") as tmp:
                torch.save(feat, tmp)
