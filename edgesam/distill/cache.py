"""Teacher embeddings on disk, computed once: fp16, one file per view, resumable after a kill.

Layout: `<cache_dir>/<teacher id>/<key[:2]>/<key>.npy`, where the teacher id hashes the teacher's
encoder weights (after any resize to the input size) and the backend that runs it, and the key is
the sha256 of the exact encoder input (see `views`). Each entry is written to a temporary name and
renamed into place, so a killed fill leaves only whole entries and a rerun computes just the rest.
Entries are plain `.npy` arrays, read with `allow_pickle=False`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from tqdm import tqdm

from edgesam_runtime.files import atomic_path, write_json_atomic

DTYPE = np.float16


class TeacherCache:
    def __init__(self, root: str | Path, teacher_id: str, describe: dict | None = None):
        self.dir = Path(root) / teacher_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.teacher_id = teacher_id
        if describe is not None and not (self.dir / "teacher.json").exists():
            write_json_atomic(self.dir / "teacher.json", describe)

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def load(self, key: str) -> np.ndarray:
        path = self.path(key)
        try:
            return np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise KeyError(f"{path}: no teacher embedding cached for this view; fill the cache first") from None
        except ValueError as exc:
            raise ValueError(f"{path}: unreadable cache entry ({exc}); delete it and rerun") from None

    def put(self, key: str, embedding: np.ndarray) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(embedding, dtype=DTYPE))

    def count(self) -> int:
        return sum(1 for _ in self.dir.glob("*/*.npy"))


def fill(cache: TeacherCache, views: Iterable, encode: Callable[[np.ndarray], np.ndarray],
         total: int, progress: bool = True, report: Callable[[dict], None] | None = None,
         report_every: int = 50) -> dict:
    """Compute the teacher embedding of every view not cached yet; returns counts and every view's key.

    `views` yields View objects; `encode` maps (1, 3, S, S) float32 to (1, C, e, e). `report` gets the
    running counts every `report_every` views (status lines for line software).
    """
    bar = None
    if progress:
        bar = tqdm(total=total, desc="teacher embeddings", unit="view")
    counts = {"total": total, "computed": 0, "reused": 0}
    keys: list[str] = []
    try:
        for view in views:
            if cache.has(view.key):
                counts["reused"] += 1
            else:
                cache.put(view.key, np.asarray(encode(view.x))[0])
                counts["computed"] += 1
            keys.append(view.key)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(computed=counts["computed"], reused=counts["reused"])
            if report is not None and len(keys) % report_every == 0:
                report({**counts, "done": len(keys)})
    finally:  # a bar left open on an error would garble every later line of the terminal
        if bar is not None:
            bar.close()
    return {**counts, "keys": keys}


def read_description(cache: TeacherCache) -> dict:
    return json.loads((cache.dir / "teacher.json").read_text())
