"""read_image / read_mask / write_image_atomic / list_images."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from edgesam.data import DataError, list_images, read_image, read_mask, write_image_atomic


def test_gray_8bit(tmp_path, save_image):
    arr = np.arange(12 * 7, dtype=np.uint8).reshape(12, 7)
    out = read_image(save_image(tmp_path / "g.png", arr))
    assert out.dtype == np.uint8 and out.shape == (12, 7)
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_gray_kept_as_uint16(tmp_path, ext):
    arr = (np.arange(20 * 9, dtype=np.uint32) * 331 % 65536).astype(np.uint16).reshape(20, 9)
    Image.fromarray(arr).save(tmp_path / f"g16{ext}")
    out = read_image(tmp_path / f"g16{ext}")
    assert out.dtype == np.uint16 and out.shape == (20, 9)
    np.testing.assert_array_equal(out, arr)
    assert out.max() > 255  # not narrowed to 8 bits


def test_int32_mode_i_narrowed_to_uint16(tmp_path):
    arr = np.array([[0, 1000], [40000, 65535]], dtype=np.int32)
    Image.fromarray(arr, mode="I").save(tmp_path / "i.tif")
    out = read_image(tmp_path / "i.tif")
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, arr)


def test_rgba_and_rgb(tmp_path, save_image):
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    out = read_image(save_image(tmp_path / "a.png", rgba))
    assert out.shape == (5, 6, 4) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgba)
    out = read_image(save_image(tmp_path / "b.png", rgba[..., :3]))
    assert out.shape == (5, 6, 3)


def test_palette_image_becomes_rgb(tmp_path):
    im = Image.new("P", (4, 3))
    im.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    im.putpixel((1, 1), 1)
    im.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    assert out.shape == (3, 4, 3)
    assert tuple(out[1, 1]) == (255, 0, 0)


def test_garbage_bytes_raise_data_error_naming_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not an image at all")
    with pytest.raises(DataError, match="broken.png"):
        read_image(bad)
    with pytest.raises(DataError, match="broken.png"):
        read_mask(bad)
    assert issubclass(DataError, ValueError)


def test_truncated_png_raises_data_error(tmp_path, save_image):
    path = save_image(tmp_path / "trunc.png", np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="trunc.png"):
        read_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.png"):
        read_image(tmp_path / "nope.png")


def test_unsupported_float_mode(tmp_path):
    Image.fromarray(np.zeros((3, 3), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(DataError, match="f.tif.*mode"):
        read_image(tmp_path / "f.tif")


def test_read_mask_modes(tmp_path, save_image):
    Image.fromarray(np.array([[0, 1], [1, 0]], bool)).save(tmp_path / "one.png")  # mode "1"
    np.testing.assert_array_equal(read_mask(tmp_path / "one.png"), [[0, 255], [255, 0]])
    ids16 = np.array([[0, 300], [7, 7]], np.uint16)
    Image.fromarray(ids16).save(tmp_path / "ids16.png")
    out = read_mask(tmp_path / "ids16.png")
    assert out.dtype == np.uint16 and out.ndim == 2
    np.testing.assert_array_equal(out, ids16)
    gray_rgb = np.repeat(np.array([[0, 9]], np.uint8)[..., None], 3, axis=2)
    np.testing.assert_array_equal(read_mask(save_image(tmp_path / "rgb.png", gray_rgb)), [[0, 9]])
    colour = np.zeros((2, 2, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    with pytest.raises(DataError, match="colour.png"):
        read_mask(save_image(tmp_path / "colour.png", colour))


@pytest.mark.parametrize("array", [
    np.arange(30, dtype=np.uint8).reshape(5, 6),
    (np.arange(30, dtype=np.uint16) * 2000).reshape(5, 6),
    np.arange(90, dtype=np.uint8).reshape(5, 6, 3),
])
def test_write_atomic_roundtrip_leaves_no_temp(tmp_path, array):
    path = write_image_atomic(tmp_path / "sub" / "x.png", array)
    np.testing.assert_array_equal(read_image(path), array)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["x.png"]


def test_write_atomic_replaces_and_rejects_bad_input(tmp_path):
    path = tmp_path / "x.png"
    write_image_atomic(path, np.zeros((2, 2), np.uint8))
    write_image_atomic(path, np.full((3, 3), 7, np.uint8))
    assert read_image(path).shape == (3, 3)
    with pytest.raises(ValueError):
        write_image_atomic(tmp_path / "y.png", np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError):
        write_image_atomic(tmp_path / "y.xyz", np.zeros((2, 2), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_list_images_sorted_filtered(tmp_path):
    for name in ["b.PNG", "a.jpg", "c.TIFF", "d.bmp", "e.jpeg", "notes.txt", ".hidden.png", "z.tif"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "dir.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.jpg", "b.PNG", "c.TIFF", "d.bmp", "e.jpeg", "z.tif"]
    with pytest.raises(DataError):
        list_images(tmp_path / "missing")


def test_write_atomic_honours_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_image_atomic(tmp_path / "perm.png", np.zeros((2, 2), np.uint8))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600: other accounts can read it


def test_directory_named_like_image(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(DataError, match="d.png"):
        read_image(tmp_path / "d.png")
