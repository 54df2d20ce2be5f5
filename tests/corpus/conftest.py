"""The corpus, built once per session: good assets (vit_t at 64 px, a bundle of it, a small dataset, a
picture) and every bad input derived from them."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.corpus import corpus as c


@dataclass
class Corpus:
    root: Path
    marker: Path  # created only if a checkpoint's pickled code ran
    picture: Path
    data: Path
    checkpoint: Path
    bundle: Path
    bad: dict = field(default_factory=dict)  # (kind, name) -> Input


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Corpus:
    import torch

    from edgesam.export import ExportConfig, export_bundle
    from edgesam.models import arch_for, build_sam, save_checkpoint

    root = tmp_path_factory.mktemp("corpus")
    torch.manual_seed(0)
    arch = arch_for("vit_t", c.IMAGE_SIZE)
    checkpoint = save_checkpoint(build_sam(arch), root / "good/model.pth", arch)
    bundle = root / "good/bundle"
    export_bundle(checkpoint, bundle, ExportConfig(precisions=("fp32",), max_boxes=c.BUNDLE_MAX_BOXES,
                                                   max_points=c.BUNDLE_MAX_POINTS), progress=False)
    picture = c._png(root / "good/part.png", c.picture())
    data = c._pairs(root / "good/data", count=4)
    found = Corpus(root, root / "PAYLOAD_RAN", picture, data, checkpoint, bundle)
    inputs = (c.bad_images(root / "images") + c.image_folders(root / "image_folders", picture)
              + c.bad_datasets(root / "datasets", picture)
              + c.bad_checkpoints(root / "checkpoints", checkpoint, found.marker)
              + c.bad_bundles(root / "bundles", bundle) + c.bad_prompts(root / "prompts")
              + c.bad_run_dirs(root / "run_dirs", checkpoint) + c.bad_specs(root / "specs", root / "datasets"))
    found.bad = {(i.kind, i.name): i for i in inputs}
    return found
