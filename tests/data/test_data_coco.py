"""COCO: RLE (string and list) decoding against hand-computed masks, polygons, JSON layouts."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgesam.data import DataError, load_dataset
from edgesam.data.coco import (polygons_to_mask, rle_counts_from_string, rle_counts_to_string, rle_decode,
                               rle_encode)

# 3x3 mask, column-major runs [2 zeros, 3 ones, 1 zero, 3 ones]:
# col0 = 0,0,1  col1 = 1,1,0  col2 = 1,1,1
HAND_MASK = np.array([[0, 1, 1], [0, 1, 1], [1, 0, 1]], bool)
HAND_COUNTS = [2, 3, 1, 3]
# maskApi.c rleToString by hand: 2->'2', 3->'3', 1->'1', 3-cnts[1]=0 -> '0'
HAND_STRING = "2310"


def reference_encode(mask: np.ndarray) -> list[int]:
    """Test-side RLE encoder written independently of the library (loop over pixels)."""
    counts, current, run = [], 0, 0
    for v in mask.T.reshape(-1):
        if int(v) != current:
            counts.append(run)
            current, run = int(v), 0
        run += 1
    counts.append(run)
    return counts


def test_hand_computed_uncompressed_and_string():
    np.testing.assert_array_equal(rle_decode(HAND_COUNTS, 3, 3), HAND_MASK)
    assert rle_counts_from_string(HAND_STRING) == HAND_COUNTS
    assert rle_counts_to_string(HAND_COUNTS) == HAND_STRING
    assert rle_encode(HAND_MASK) == HAND_COUNTS == reference_encode(HAND_MASK)


def test_string_codec_multichunk_and_negative_delta():
    # 40 = 0b01000|00001 -> chunks 8 (+0x20 more) and 1 -> 'X1'; 5 -> '5'; 2 -> '2';
    # 3 - cnts[1] = -2 -> low 5 bits 0b11110 with sign bit set, rest is -1 -> 'N'
    assert rle_counts_to_string([40, 5, 2, 3]) == "X152N"
    assert rle_counts_from_string("X152N") == [40, 5, 2, 3]
    assert rle_counts_from_string(b"X152N") == [40, 5, 2, 3]


@pytest.mark.parametrize("seed", range(4))
def test_random_roundtrip(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(1, 60, size=2)
    mask = rng.random((h, w)) < rng.uniform(0.05, 0.95)
    if seed == 0:
        mask[0, 0] = True  # runs starting with foreground need a leading 0
    counts = rle_encode(mask)
    assert counts == reference_encode(mask)
    assert rle_counts_from_string(rle_counts_to_string(counts)) == counts
    np.testing.assert_array_equal(rle_decode(counts, h, w), mask)


def test_rle_decode_rejects_wrong_total():
    with pytest.raises(ValueError, match="sum"):
        rle_decode([1, 2], 3, 3)


def test_polygon_rasterisation():
    m = polygons_to_mask([[2, 1, 6, 1, 6, 4, 2, 4]], 8, 10)  # x 2..6, y 1..4 inclusive
    expected = np.zeros((8, 10), bool)
    expected[1:5, 2:7] = True
    np.testing.assert_array_equal(m, expected)
    with pytest.raises(ValueError):
        polygons_to_mask([[1, 2, 3, 4]], 8, 10)


def _write_coco(folder, save_image, *, images_subdir=True, size=(12, 16)):
    h, w = size
    sub = folder / "images" if images_subdir else folder
    save_image(sub / "a.png", np.full((h, w), 50, np.uint8))
    save_image(sub / "b.png", np.full((h, w), 60, np.uint8))
    rle_mask = np.zeros((h, w), bool)
    rle_mask[6:10, 10:15] = True
    crowd = np.zeros((h, w), bool)
    crowd[0:3, 0:4] = True
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "height": h, "width": w},
                   {"id": 2, "file_name": "b.png", "height": h, "width": w}],
        "categories": [{"id": 7, "name": "scratch"}, {"id": 9, "name": "pit"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 7, "iscrowd": 0,
             "segmentation": [[2, 1, 6, 1, 6, 4, 2, 4]]},
            {"id": 11, "image_id": 1, "category_id": 7, "iscrowd": 0,
             "segmentation": {"size": [h, w], "counts": rle_counts_to_string(rle_encode(rle_mask))}},
            {"id": 12, "image_id": 2, "category_id": 9, "iscrowd": 1,
             "segmentation": {"size": [h, w], "counts": reference_encode(crowd)}},
        ],
    }
    path = folder / "instances.json"
    path.write_text(json.dumps(coco))
    return path, rle_mask, crowd


@pytest.mark.parametrize("images_subdir", [True, False])
def test_coco_json_file_and_folder(tmp_path, save_image, images_subdir):
    path, rle_mask, crowd = _write_coco(tmp_path, save_image, images_subdir=images_subdir)
    for target in (path, tmp_path):
        ds = load_dataset(target)
        assert ds.labelled and len(ds) == 2 and ds.classes == ["pit", "scratch"]
        assert [r.class_name for r in ds.records] == ["scratch", "pit"]
        a = ds.load(0)
        assert a.masks.shape == (2, 12, 16)
        poly = np.zeros((12, 16), bool)
        poly[1:5, 2:7] = True
        np.testing.assert_array_equal(a.masks[0], poly)
        np.testing.assert_array_equal(a.masks[1], rle_mask)
        b = ds.load(1)  # crowd annotation kept as an object (12 px, so lower min_area)
        assert b.num_objects == 0
        np.testing.assert_array_equal(load_dataset(target, min_area=1).load(1).masks[0], crowd)


def test_coco_missing_image_and_bad_category(tmp_path, save_image):
    path, _, _ = _write_coco(tmp_path, save_image)
    data = json.loads(path.read_text())
    data["images"][1]["file_name"] = "gone.png"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="gone.png"):
        load_dataset(path)
    data["images"][1]["file_name"] = "b.png"
    data["annotations"][0]["category_id"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match="category_id 99"):
        load_dataset(path)


def test_coco_size_mismatch_names_image(tmp_path, save_image):
    path, _, _ = _write_coco(tmp_path, save_image)
    data = json.loads(path.read_text())
    data["images"][0]["height"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"a\.png.*99x16"):
        load_dataset(path).load(0)


def test_invalid_json_named(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="x.json"):
        load_dataset(bad)


def test_check_reports_bad_annotation_and_per_class_coco(tmp_path, save_image):
    from edgesam.data import check_dataset

    path, _, _ = _write_coco(tmp_path / "set" / "lot1", save_image)
    ds = load_dataset(tmp_path / "set")  # a per-class root whose subfolder is a COCO set
    assert ds.layout == "per_class" and len(ds) == 2 and ds.classes == ["pit", "scratch"]
    report = check_dataset(tmp_path / "set", min_area=1)
    assert report.ok and report.classes["scratch"].objects == 2 and report.classes["pit"].objects == 1
    data = json.loads(path.read_text())
    data["annotations"][1]["segmentation"]["counts"] = [1, 2, 3]
    path.write_text(json.dumps(data))
    report = check_dataset(path)
    assert not report.ok and "a.png" in report.errors[0] and "id 11" in report.errors[0]
    assert report.classes["scratch"].bad_labels == 1
