"""load_dataset layouts, lazy loading and the errors that must name files."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgesam.data import DataError, Dataset, ImageRecord, Sample, load_dataset



def square_mask(h: int, w: int, boxes, value: int = 255) -> np.ndarray:
    """uint8 mask with each (y0, y1, x0, x1) box filled with ``value``."""
    m = np.zeros((h, w), np.uint8)
    for y0, y1, x0, x1 in boxes:
        m[y0:y1, x0:x1] = value
    return m
def _img(h=32, w=40, value=100):
    return np.full((h, w), value, np.uint8)


def test_pairs_folder_binary_regions_become_objects(make_pairs):
    root, write = make_pairs
    write("a", _img(), square_mask(32, 40, [(2, 10, 2, 10), (20, 30, 25, 38)]))
    write("b", _img(), square_mask(32, 40, [(5, 15, 5, 15)]), image_ext=".jpg")
    ds = load_dataset(root)
    assert isinstance(ds, Dataset) and ds.labelled and len(ds) == 2
    assert [r.stem for r in ds.records] == ["a", "b"]
    assert ds.classes == ["parts"] and ds.records[0].class_name == "parts"
    s = ds.load(0)
    assert isinstance(s, Sample) and s.masks.shape == (2, 32, 40) and s.masks.dtype == bool
    assert s.image.shape == (32, 40) and s.image_path == root / "images" / "a.png"
    assert ds[1].num_objects == 1


def test_min_area_attribute_applies(make_pairs):
    root, write = make_pairs
    write("a", _img(), square_mask(32, 40, [(2, 10, 2, 10), (20, 23, 25, 28)]))  # 64 px + 9 px
    assert load_dataset(root).load(0).num_objects == 1
    assert load_dataset(root, min_area=4).load(0).num_objects == 2
    assert load_dataset(root).min_area == 16


def test_instance_masks_and_forced_mode(make_pairs):
    root, write = make_pairs
    ids = np.zeros((32, 40), np.uint8)
    ids[0:8, 0:8], ids[0:8, 8:16], ids[20:30, 20:30] = 1, 2, 3  # ids 1 and 2 touch
    write("a", _img(), ids)
    assert load_dataset(root).load(0).num_objects == 3
    # forced binary: the 0/1/2/3 values are all <= 127 -> no foreground
    assert load_dataset(root, mask_mode="binary").load(0).num_objects == 0


def test_16bit_image_and_rgba_in_dataset(make_pairs):
    root, write = make_pairs
    write("deep", (np.arange(32 * 40, dtype=np.uint16) * 50).reshape(32, 40), square_mask(32, 40, [(0, 8, 0, 8)]))
    write("rgba", np.zeros((32, 40, 4), np.uint8), square_mask(32, 40, [(0, 8, 0, 8)]))
    ds = load_dataset(root)
    assert ds.load(0).image.dtype == np.uint16
    assert ds.load(1).image.shape == (32, 40, 4)


def test_image_without_mask_is_error_naming_it(make_pairs):
    root, write = make_pairs
    write("a", _img(), square_mask(32, 40, [(0, 8, 0, 8)]))
    write("lonely", _img(), None)
    with pytest.raises(DataError, match=r"lonely\.png"):
        load_dataset(root)


def test_mask_size_mismatch_names_both_files_and_sizes(make_pairs):
    root, write = make_pairs
    write("a", _img(32, 40), square_mask(30, 40, [(0, 8, 0, 8)]))
    ds = load_dataset(root)  # indexing reads no pixels
    with pytest.raises(DataError) as info:
        ds.load(0)
    msg = str(info.value)
    assert "images/a.png" in msg and "masks/a.png" in msg and "32x40" in msg and "30x40" in msg


def test_unreadable_image_names_it(make_pairs):
    root, write = make_pairs
    write("a", _img(), square_mask(32, 40, [(0, 8, 0, 8)]))
    (root / "images" / "a.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DataError, match=r"a\.png"):
        load_dataset(root).load(0)


def test_duplicate_stems_rejected(make_pairs):
    root, write = make_pairs
    write("a", _img(), square_mask(32, 40, [(0, 8, 0, 8)]))
    write("a", _img(), None, image_ext=".jpg")
    with pytest.raises(DataError, match="stem 'a'"):
        load_dataset(root)


def test_unlabelled_folder(tmp_path, save_image):
    save_image(tmp_path / "line" / "images" / "x.png", _img())
    ds = load_dataset(tmp_path / "line")
    assert not ds.labelled and len(ds) == 1
    assert ds.load(0).masks.shape == (0, 32, 40)


def test_per_class_layout_with_unlabelled_class(tmp_path, save_image):
    for cls, n in (("dent", 2), ("scuff", 3)):
        for i in range(n):
            save_image(tmp_path / cls / "images" / f"{i}.png", _img())
            save_image(tmp_path / cls / "masks" / f"{i}.png", square_mask(32, 40, [(0, 8, 0, 8)]))
    save_image(tmp_path / "free" / "images" / "f.png", _img())
    (tmp_path / "notes").mkdir()  # not a dataset: ignored
    (tmp_path / "README.md").write_text("x")
    ds = load_dataset(tmp_path)
    assert ds.labelled and len(ds) == 5
    assert ds.classes == ["dent", "scuff"] and ds.unlabelled_classes == ["free"]
    assert {r.class_name for r in ds.records} == {"dent", "scuff"}
    free = load_dataset(tmp_path / "free")
    assert not free.labelled and len(free) == 1 and free.records[0].class_name == "free"


def test_subset_keeps_vocabulary_and_settings(tmp_path, save_image):
    for cls in ("a", "b"):
        save_image(tmp_path / cls / "images" / "0.png", _img())
        save_image(tmp_path / cls / "masks" / "0.png", square_mask(32, 40, [(0, 8, 0, 8)]))
    ds = load_dataset(tmp_path, min_area=5)
    sub = ds.subset([1])
    assert len(sub) == 1 and sub.classes == ["a", "b"] and sub.min_area == 5 and sub.records[0].class_name == "b"


def test_not_a_dataset_explains_layouts(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DataError, match="images/ and masks/"):
        load_dataset(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "missing")


def test_non_coco_json_does_not_hijack_layout(make_pairs):
    root, write = make_pairs
    write("a", _img(), square_mask(32, 40, [(0, 8, 0, 8)]))
    (root / "report.json").write_text(json.dumps({"ok": True}))
    assert load_dataset(root).layout == "pairs"


def test_record_is_hashable_and_keyed():
    rec = ImageRecord("s", "c", __import__("pathlib").Path("x.png"), None, ({"id": 1},))
    assert rec.key == "c/s" and isinstance(hash(rec), int)


@pytest.mark.parametrize("linked", ["images", "masks", "folder"])
def test_links_out_of_an_images_masks_dataset_are_refused(tmp_path, save_image, linked):
    """A link inside a dataset someone else made must not read files from elsewhere (as COCO file names)."""
    from edgesam.data import check_dataset

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    save_image(outside / "a.png", np.zeros((12, 16), np.uint8))
    root = tmp_path / "set" / "crack"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
        save_image(root / sub / "ok.png", np.full((12, 16), 255 if sub == "masks" else 90, np.uint8))
    if linked == "folder":  # images/ itself a link to a folder outside the class folder
        (root / "images").rename(outside / "images")
        (root / "images").symlink_to(outside / "images")
    else:
        (root / linked / "a.png").symlink_to(outside / "a.png")
        save_image(root / ("masks" if linked == "images" else "images") / "a.png", np.zeros((12, 16), np.uint8))
    with pytest.raises(DataError, match=r"leads to .*elsewhere.*, outside .*crack"):
        load_dataset(tmp_path / "set")
    report = check_dataset(tmp_path / "set")
    assert not report.ok and "outside" in report.errors[0]


def test_links_inside_the_class_folder_are_followed(tmp_path, save_image):
    root = tmp_path / "crack"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
        save_image(root / sub / "ok.png", np.full((12, 16), 255 if sub == "masks" else 90, np.uint8))
    (root / "images" / "again.png").symlink_to(root / "images" / "ok.png")
    (root / "masks" / "again.png").symlink_to(root / "masks" / "ok.png")
    assert len(load_dataset(root)) == 2
