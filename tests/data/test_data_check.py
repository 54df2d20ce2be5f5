"""check_dataset and the `edgesam data` CLI: every bad file is named; exit codes gate a release."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgesam.cli.data import data
from edgesam.data import check_dataset, load_dataset


def _bad_folder(tmp_path, save_image):
    root = tmp_path / "bad"
    m = np.zeros((20, 30), np.uint8)
    m[2:10, 2:10] = 255
    img = np.full((20, 30), 90, np.uint8)
    save_image(root / "images" / "good.png", img)
    save_image(root / "masks" / "good.png", m)
    save_image(root / "images" / "wrongsize.png", img)
    save_image(root / "masks" / "wrongsize.png", np.zeros((21, 30), np.uint8))
    (root / "images" / "garbage.png").write_bytes(b"not a png")
    save_image(root / "masks" / "garbage.png", m)
    save_image(root / "images" / "nomask.png", img)
    save_image(root / "masks" / "orphan.png", m)
    save_image(root / "images" / "empty.png", img)
    save_image(root / "masks" / "empty.png", np.zeros((20, 30), np.uint8))
    return root


def test_bad_folder_names_every_file(tmp_path, save_image):
    root = _bad_folder(tmp_path, save_image)
    report = check_dataset(root)
    assert not report.ok
    text = "\n".join(report.errors)
    for name in ("images/wrongsize.png", "masks/wrongsize.png", "images/garbage.png", "images/nomask.png"):
        assert name in text, name
    assert "20x30" in text and "21x30" in text
    assert "good.png" not in text
    warn = "\n".join(report.warnings)
    assert "orphan.png" in warn and "empty.png" in warn
    c = report.classes["bad"]
    assert (c.images, c.pairs, c.objects, c.empty_masks) == (5, 4, 1, 1)
    assert (c.size_mismatches, c.unreadable, c.images_without_masks, c.masks_without_images) == (1, 1, 1, 1)
    assert c.min_hw == [20, 30] == c.max_hw
    d = report.to_dict()
    assert d["ok"] is False and d["classes"]["bad"]["problems"] == 3
    json.dumps(d)
    table = report.format_table()
    assert "bad" in table and "TOTAL" in table


def test_not_a_dataset_is_an_error_not_an_exception(tmp_path):
    report = check_dataset(tmp_path)
    assert not report.ok and "not a dataset" in report.errors[0]
    assert not check_dataset(tmp_path / "missing").ok


def test_cli_check_exit_codes(tmp_path, save_image, synth_root):
    runner = CliRunner()
    bad = runner.invoke(data, ["check", str(_bad_folder(tmp_path, save_image))])
    assert bad.exit_code == 1
    assert "garbage.png" in bad.output and "FAILED" in bad.output
    out_json = tmp_path / "report.json"
    good = runner.invoke(data, ["check", str(synth_root), "--json", str(out_json)])
    assert good.exit_code == 0, good.output
    assert "free (unlabelled)" in good.output and "OK" in good.output
    record = json.loads(out_json.read_text())
    assert record["ok"] is True
    # the mask-grid ceiling per class and a recommendation: each grid's figure is an IoU in [0, 1], and the
    # refiner's full-resolution grid draws at least as well as the decoder's quarter-resolution one
    assert "IoU ceiling of each mask grid" in good.output and "recommended:" in good.output
    grids = record["ceiling"]["grids"]
    coarse, fine = grids["ROI 1.5x @128 px, decoder 32x32"], grids["ROI 1.5x @128 px, refiner 128x128"]
    assert set(coarse) == {"crack", "pit", "scratch", "stain"}
    assert all(0.0 <= coarse[c] <= fine[c] + 0.01 <= 1.01 for c in coarse) and fine["crack"] > coarse["crack"]


def test_cli_synth_and_help(tmp_path):
    runner = CliRunner()
    res = runner.invoke(data, ["synth", str(tmp_path / "s"), "--count", "4", "--size", "48", "--free", "1", "--seed", "2"])
    assert res.exit_code == 0, res.output
    assert "wrote 4 labelled + 1 defect-free" in res.output
    assert len(load_dataset(tmp_path / "s")) == 4
    for args in (["--help"], ["check", "--help"], ["synth", "--help"]):
        help_text = runner.invoke(data, args).output
        assert "Example" in help_text and "edgesam data" in help_text


@pytest.mark.slow
@pytest.mark.data
def test_magnetic_tile_integration(magnetic_tile, tmp_path):
    ds = load_dataset(magnetic_tile)
    assert ds.classes == ["blowhole", "break", "crack", "fray", "uneven"]
    assert len(ds) == 392 and ds.labelled and ds.unlabelled_classes == ["free"]
    free = load_dataset(magnetic_tile / "free")
    assert not free.labelled and len(free) > 0
    out_json = tmp_path / "mt.json"
    result = CliRunner().invoke(data, ["check", str(magnetic_tile), "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    assert "free (unlabelled)" in result.output
    report = json.loads(out_json.read_text())
    assert report["ok"] and report["unlabelled_classes"] == ["free"]
    labelled = {n: c for n, c in report["classes"].items() if c["labelled"]}
    assert sorted(labelled) == ds.classes
    assert sum(c["pairs"] for c in labelled.values()) == 392
    assert report["classes"]["free"]["images"] == len(free)
    # binary masks with JPEG-ish edges: nearly every pair yields at least one defect object
    assert all(c["objects"] >= 0.9 * c["pairs"] for c in labelled.values())
