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


GATE_RULES = """mm_per_px: 0.1
classes:
  pit: {max_area_mm2: 0.5}
  stain: {max_area_mm2: 2.0}
"""


@pytest.fixture(scope="session")
def gate_bundles(tmp_path_factory):
    """A model that segments (the from-scratch recipe, 12 short epochs on 8 synthetic images at 64 px) exported
    as the baseline, and the same model with noise on its image encoder's weights (1.5 times each tensor's
    spread) as a deliberately degraded release; the data and a rules file for its classes. Pits and stains
    only: blobs a model this small marks after so few steps (thin cracks and scratches it may leave empty,
    and the gate refuses a baseline with empty masks)."""
    import torch

    from edgesam.data import synthesize_dataset
    from edgesam.export import ExportConfig, export_bundle
    from edgesam.models import load_model, save_checkpoint
    from edgesam.train import FinetuneConfig, finetune, merge_run

    root = tmp_path_factory.mktemp("gate")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = synthesize_dataset(root / "data", count=8, seed=0, size=64, classes=("pit", "stain"))
        finetune(FinetuneConfig(model="vit_t", init="random", image_size=64, data=str(data), out=str(root / "run"),
                                epochs=12, batch_size=2, objects_per_image=2, warmup_steps=5, val_max_images=2,
                                val_every=100), progress=False)
        merge_run(root / "run", root / "merged.pth")
        export_bundle(root / "merged.pth", root / "baseline", ExportConfig(precisions=("fp32",)), progress=False)
        model, arch = load_model(None, root / "merged.pth", None)
        noise = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in model.image_encoder.parameters():
                if p.ndim > 1:
                    p.add_(torch.randn(p.shape, generator=noise) * p.std() * 1.5)
        save_checkpoint(model, root / "perturbed.pth", arch)
        export_bundle(root / "perturbed.pth", root / "degraded", ExportConfig(precisions=("fp32",)), progress=False)
    finally:
        torch.set_num_threads(threads)
    rules = root / "rules.yaml"
    rules.write_text(GATE_RULES)
    return {"baseline": root / "baseline", "degraded": root / "degraded", "data": data, "rules": rules}
