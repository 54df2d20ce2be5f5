"""`edgesam predict --bundle` answers like `edgesam predict --checkpoint` on the same weights."""
from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from edgesam.cli.main import main


def test_predict_bundle_matches_checkpoint(bundle_dir, tiny_model, make_image, tmp_path):
    from edgesam.models import save_checkpoint
    from edgesam.models.registry import arch_for

    checkpoint = tmp_path / "model.pth"
    save_checkpoint(tiny_model, checkpoint, arch_for("vit_t", 64))
    image = tmp_path / "part.png"
    Image.fromarray(make_image(seed=7)).save(image)
    prompt = ["--box", "10,10,80,60", "--box", "40,20,130,85", "--point", "60,40,1"]
    runs = {}
    for name, source in (("runtime", ["--bundle", bundle_dir]), ("torch", ["--checkpoint", checkpoint])):
        out = tmp_path / name
        result = CliRunner().invoke(main, ["predict", str(image), *map(str, source), *prompt, "--out", str(out)])
        assert result.exit_code == 0, result.output
        runs[name] = (np.asarray(Image.open(out / "part_mask.png")), json.loads((out / "part.json").read_text()))
    assert runs["runtime"][1]["backend"] == "runtime" and runs["torch"][1]["backend"] == "pytorch"
    assert runs["torch"][0].any() and not np.any(runs["torch"][1]["empty_masks"])  # equal masks of something
    np.testing.assert_allclose(runs["runtime"][1]["scores"], runs["torch"][1]["scores"], atol=1e-3)
    differ = (runs["runtime"][0] != runs["torch"][0]).mean()
    assert differ <= 1e-3, differ  # boundary pixels at most (the parity tests bound them exactly)


def test_predict_needs_exactly_one_source(bundle_dir, tmp_path):
    result = CliRunner().invoke(main, ["predict", str(bundle_dir / "manifest.json"), "--box", "1,1,5,5"])
    assert result.exit_code == 2 and "exactly one" in result.output
