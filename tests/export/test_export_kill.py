"""An export killed (SIGKILL) halfway through leaves the previous bundle at its place, whole and loadable,
and what the killed export left beside it is removed by the next export into the same place."""
import random
import shutil
import time

import numpy as np
import pytest

from edgesam.export.staging import clean_stale
from edgesam_runtime.manifest import read_manifest, verify_graphs
from edgesam.models import save_checkpoint
from edgesam_runtime.files import sha256_file
from tests.killing import edgesam_command, kill_when


def _hashes(folder):
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir())}


def _partials(parent):
    return [p for p in parent.iterdir() if p.name.startswith(".bundle.partial-")]


@pytest.mark.slow
def test_killed_export_keeps_the_previous_bundle(tiny_model, fp32_bundle, tmp_path):
    from edgesam_runtime import Segmenter

    out = tmp_path / "bundle"
    shutil.copytree(fp32_bundle[0], out)  # the previous, good bundle
    before = _hashes(out)
    model, arch = tiny_model
    checkpoint = save_checkpoint(model, tmp_path / "model.pth", arch)

    delay = random.uniform(0.0, 0.5)  # somewhere in the ONNX export and parity checks
    started = []

    def halfway():  # the staging folder exists (the model is loaded), plus a random delay
        if not started and _partials(tmp_path):
            started.append(time.monotonic())
        return bool(started) and time.monotonic() - started[0] >= delay

    kill_when(edgesam_command("export", "--checkpoint", str(checkpoint), "--out", str(out), "--quiet"),
              halfway, tmp_path / "export.log")
    assert _partials(tmp_path), "the export finished its swap before the kill: not killed halfway"
    assert _hashes(out) == before
    verify_graphs(out, read_manifest(out), "fp32")
    seg = Segmenter.open(out, threads=1)
    result = seg.segment(seg.encode(np.full((40, 60), 128, np.uint8)), boxes=[[5, 5, 30, 30]])
    assert result.masks.shape == (1, 1, 40, 60)

    removed = clean_stale(out)  # what the next export into `out` does first
    assert removed and not _partials(tmp_path)
    assert _hashes(out) == before
