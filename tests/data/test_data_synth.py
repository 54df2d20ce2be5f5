"""synthesize_dataset: byte-determinism, layout, visible defects whose masks match the drawing."""
from __future__ import annotations

import time

import numpy as np
import pytest

from edgesam.data import load_dataset, read_image, read_mask, synthesize_dataset


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = synthesize_dataset(tmp_path / "a", count=4, seed=7, size=64, free_count=1)
    b = synthesize_dataset(tmp_path / "b", count=4, seed=7, size=64, free_count=1)
    c = synthesize_dataset(tmp_path / "c", count=4, seed=8, size=64, free_count=1)
    fa, fb, fc = _files(a), _files(b), _files(c)
    assert len(fa) == 4 * 2 + 1
    assert fa == fb
    assert fa.keys() == fc.keys() and all(fa[k] != fc[k] for k in fa)
    assert not list(tmp_path.rglob("*.tmp"))


def test_growing_count_keeps_earlier_images(tmp_path):
    small = _files(synthesize_dataset(tmp_path / "s", count=4, seed=1, size=64))
    big = _files(synthesize_dataset(tmp_path / "b", count=8, seed=1, size=64))
    assert all(big[k] == v for k, v in small.items())


def test_layout_loads_back(synth_root):
    ds = load_dataset(synth_root)
    assert ds.classes == ["crack", "pit", "scratch", "stain"] and len(ds) == 8
    assert ds.unlabelled_classes == ["free"]
    assert len(load_dataset(synth_root / "free")) == 2
    shapes = set()
    for i in range(len(ds)):
        s = ds.load(i)
        assert s.image.dtype == np.uint8 and s.image.ndim == 2
        assert s.num_objects >= 1, s.stem
        h, w = s.image.shape
        assert 0.75 * 96 - 1 <= h <= 1.25 * 96 + 1 and 0.75 * 96 - 1 <= w <= 1.25 * 96 + 1
        shapes.add((h, w))
    assert any(h != w for h, w in shapes) and len(shapes) > 1


def _ring(mask: np.ndarray, width: int = 3) -> np.ndarray:
    grown = mask.copy()
    for _ in range(width):
        g = grown.copy()
        g[1:] |= grown[:-1]
        g[:-1] |= grown[1:]
        g[:, 1:] |= grown[:, :-1]
        g[:, :-1] |= grown[:, 1:]
        grown = g
    return grown & ~mask


def test_defects_visible_against_surrounding_surface(tmp_path):
    root = synthesize_dataset(tmp_path / "v", count=16, seed=2, size=128)
    for img_path in sorted(root.glob("*/images/*.png")):
        image = read_image(img_path).astype(np.float32)
        mask = read_mask(img_path.parent.parent / "masks" / img_path.name) > 127
        assert set(np.unique(read_mask(img_path.parent.parent / "masks" / img_path.name))) <= {0, 255}
        contrast = abs(image[mask].mean() - image[_ring(mask)].mean())
        assert contrast > 10, f"{img_path.name}: defect contrast {contrast:.1f}"


def test_free_images_have_texture_but_no_defects(synth_root):
    image = read_image(sorted((synth_root / "free" / "images").glob("*.png"))[0]).astype(np.float32)
    assert 2.0 < np.abs(np.diff(image, axis=1)).mean() < 15.0  # grain and lines, not flat, not noise


@pytest.mark.slow
def test_speed_32_images_at_256():
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        synthesize_dataset(d, count=32, seed=0, size=256)
        assert time.perf_counter() - t < 5.0


def test_rejects_unknown_class(tmp_path):
    with pytest.raises(ValueError, match="classes"):
        synthesize_dataset(tmp_path, count=2, classes=("dent",))
