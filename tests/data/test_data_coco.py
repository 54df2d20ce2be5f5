"""COCO: RLE (string and list) decoding against hand-computed masks, polygons, JSON layouts."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgesam.data import DataError, load_dataset
from edgesam.data.coco import encode_mask, segmentation_to_mask


def reference_encode(mask: np.ndarray) -> list[int]:
    """Test-side uncompressed RLE (column-major runs, background first), written independently."""
    counts, current, run = [], 0, 0
    for v in mask.T.reshape(-1):
        if int(v) != current:
            counts.append(run)
            current, run = int(v), 0
        run += 1
    counts.append(run)
    return counts


@pytest.mark.parametrize("seed", range(4))
def test_rle_string_and_list_round_trip(seed):
    rng = np.random.default_rng(seed)
    h, w = (int(v) for v in rng.integers(1, 60, size=2))
    mask = rng.random((h, w)) < rng.uniform(0.05, 0.95)
    if seed == 0:
        mask[0, 0] = True  # runs starting with foreground need a leading 0
    rle = encode_mask(mask)
    assert rle["size"] == [h, w] and isinstance(rle["counts"], str)
    np.testing.assert_array_equal(segmentation_to_mask(rle, (h, w)), mask)
    np.testing.assert_array_equal(segmentation_to_mask({"size": [h, w], "counts": reference_encode(mask)}, (h, w)), mask)


@pytest.mark.parametrize("counts, message", [
    ([1, 2], "sum to 3, expected height\\*width = 9"),   # too few runs: pixels left undefined
    ([5, 9], "sum to 14"),                                 # too many: would write past the mask
    ("1", "do not cover the 3x3 mask"),                    # compressed, too few
])
def test_rle_whose_runs_do_not_cover_the_mask_is_refused(counts, message):
    with pytest.raises(ValueError, match=message):
        segmentation_to_mask({"size": [3, 3], "counts": counts}, (3, 3))


def test_polygon_rasterisation_follows_coco():
    m = segmentation_to_mask([[2, 1, 6, 1, 6, 4, 2, 4]], (8, 10))  # corners on pixel edges: x 2..5, y 1..3
    expected = np.zeros((8, 10), bool)
    expected[1:4, 2:6] = True
    np.testing.assert_array_equal(m, expected)
    with pytest.raises(ValueError, match="3 \\(x, y\\) pairs"):
        segmentation_to_mask([[1, 2, 3, 4]], (8, 10))
    with pytest.raises(ValueError, match="far outside the 10x8"):
        segmentation_to_mask([[0, 0, 3e9, 0, 3e9, 3e9]], (8, 10))  # would overflow COCO's int rasteriser


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
             "segmentation": [[2, 1, 8, 1, 8, 5, 2, 5]]},
            {"id": 11, "image_id": 1, "category_id": 7, "iscrowd": 0,
             "segmentation": encode_mask(rle_mask)},
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
        poly[1:5, 2:8] = True
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


@pytest.mark.parametrize("text", ['{"images": [{"id": 1, "file_na', "<html>502 Bad Gateway</html>", ""])
def test_a_corrupt_annotation_file_fails_loading_and_check(tmp_path, save_image, text):
    from edgesam.data import check_dataset

    path, _, _ = _write_coco(tmp_path, save_image)
    path.write_text(text)  # truncated, junk or empty: not "an unlabelled dataset"
    with pytest.raises(DataError, match="instances.json: not valid JSON"):
        load_dataset(tmp_path)
    report = check_dataset(tmp_path)
    assert not report.ok and "instances.json" in report.errors[0]


@pytest.mark.parametrize("file_name", ["../../../../etc/passwd", "/etc/passwd", "link.png"])
def test_image_file_names_must_stay_inside_the_dataset(tmp_path, save_image, file_name):
    path, _, _ = _write_coco(tmp_path / "set", save_image)
    outside = tmp_path / "secret.png"
    save_image(outside, np.zeros((12, 16), np.uint8))
    (tmp_path / "set" / "images" / "link.png").symlink_to(outside)
    data = json.loads(path.read_text())
    data["images"][0]["file_name"] = file_name
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"images\[0\]: file_name: .* (leads outside|is an absolute path)"):
        load_dataset(path)


def test_annotation_fields_are_checked_by_the_schema(tmp_path, save_image):
    path, _, _ = _write_coco(tmp_path, save_image)
    data = json.loads(path.read_text())
    data["annotations"][1]["segmentation"]["size"] = ["12", 16]
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"instances.json: field annotations\[1\].segmentation"):
        load_dataset(path)
