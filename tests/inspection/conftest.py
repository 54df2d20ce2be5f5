"""Inspection fixtures: a tiny bundle (vit_t at 64 px, random weights), a flat folder of synthetic line
images with one boxes file each (tight ground-truth boxes), a rules file for their classes."""
from __future__ import annotations

import json
import shutil

import pytest

RULES = """product: synthetic
mm_per_px: 0.1
quality: {min_predicted_iou: 0.0}
classes:
  scratch: {max_length_mm: 3.0}
  crack: {max_length_mm: 3.0, max_width_mm: 0.5}
  pit: {max_area_mm2: 2.0, max_count: 2}
  stain: {max_area_mm2: 20.0}
"""


@pytest.fixture(scope="session")
def inspect_bundle(tmp_path_factory):
    import torch

    from edgesam.export import ExportConfig, export_bundle
    from edgesam.models import create_model

    torch.manual_seed(0)
    model = create_model("vit_t", image_size=64).eval()
    out = tmp_path_factory.mktemp("inspect") / "bundle"
    export_bundle(model, out, ExportConfig(precisions=("fp32",)), progress=False)
    return out


@pytest.fixture(scope="session")
def rules_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(RULES)
    return path


@pytest.fixture(scope="session")
def line_folder(tmp_path_factory):
    """images/ (6 synthetic parts + one corrupt file) and boxes/<stem>.json from their ground truth."""
    from edgesam.data import load_dataset, synthesize_dataset, tight_box

    root = tmp_path_factory.mktemp("line")
    data = load_dataset(synthesize_dataset(root / "data", count=6, seed=0, size=96))
    images, boxes = root / "images", root / "boxes"
    images.mkdir()
    boxes.mkdir()
    for i in range(len(data)):
        sample = data.load(i)
        shutil.copy(sample.image_path, images / sample.image_path.name)
        entries = [{"box": tight_box(m).tolist(), "class": sample.class_name} for m in sample.masks]
        (boxes / f"{sample.image_path.stem}.json").write_text(json.dumps(entries))
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    (boxes / "broken.json").write_text("[]")
    return root
