"""An export that fails or is interrupted leaves no bundle that looks complete, and never destroys
the bundle already at the destination; a tampered graph fails the parity check loudly."""
from __future__ import annotations

import json
import shutil

import onnx
import numpy as np
import pytest
from onnx import numpy_helper

from edgesam.export import ExportConfig, ParityError, export_bundle
from edgesam.export import run as export_run
from edgesam.export.staging import BundleDestinationError
from edgesam_runtime.manifest import MANIFEST_NAME


def _leftovers(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_interrupted_export_leaves_nothing(tiny_model, tmp_path, monkeypatch):
    model, arch = tiny_model

    def boom(*args, **kwargs):
        raise KeyboardInterrupt("simulated interruption inside the build")

    monkeypatch.setattr(export_run, "export_encoder", boom)
    with pytest.raises(KeyboardInterrupt):
        export_bundle(model, tmp_path / "bundle", ExportConfig(), arch=arch, progress=False)
    assert not (tmp_path / "bundle").exists()
    assert _leftovers(tmp_path) == []


@pytest.mark.slow
def test_tampered_graph_fails_parity_and_keeps_the_old_bundle(tiny_model, fp32_bundle, tmp_path, monkeypatch):
    model, arch = tiny_model
    src, _ = fp32_bundle
    out = tmp_path / "bundle"
    out.mkdir()
    (out / MANIFEST_NAME).write_text('{"old": true}')  # stands for a previous, good bundle

    def copied(name):  # the graphs the exporter writes for this model (exported once for the session)
        def export(model, path, *args, **kwargs):
            shutil.copyfile(src / name, path)
            return [path.name]
        return export

    def tampered_encoder(model, path, *args, **kwargs):
        files = copied("encoder.onnx")(model, path)
        graph = onnx.load(path)
        # Perturb the largest weight with noise (a pure rescale could vanish in the next LayerNorm).
        init = max(graph.graph.initializer, key=lambda t: int(np.prod(t.dims)))
        arr = numpy_helper.to_array(init)
        arr = arr + np.random.default_rng(0).normal(0, arr.std(), arr.shape)
        init.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), init.name))
        onnx.save(graph, path)
        return files

    monkeypatch.setattr(export_run, "export_encoder", tampered_encoder)
    monkeypatch.setattr(export_run, "export_decoder", copied("decoder.onnx"))
    with pytest.raises(ParityError, match=r"fp32 graphs .*embed_max_abs = [0-9.e+-]+ > tolerance"):
        export_bundle(model, out, ExportConfig(), arch=arch, progress=False)
    assert (out / MANIFEST_NAME).read_text() == '{"old": true}'
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME]
    assert _leftovers(tmp_path) == []


def test_successful_export_replaces_an_old_bundle(fp32_bundle, tiny_model, tmp_path):
    src, _ = fp32_bundle
    out = tmp_path / "bundle"
    out.mkdir()
    stale = {"file": "stale.onnx", "format": "onnx", "precision": "fp32", "sha256": "0" * 64}
    (out / MANIFEST_NAME).write_text(json.dumps({"graphs": {"fp32": {"encoder": stale, "decoder": stale}}}))
    (out / "stale.onnx").write_bytes(b"x")  # listed in the old manifest: the old bundle's own file
    from edgesam.export.staging import staged_dir

    with staged_dir(out) as tmp:
        for f in src.iterdir():
            (tmp / f.name).write_bytes(f.read_bytes())
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in src.iterdir())
    assert _leftovers(tmp_path) == []


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(tiny_model, tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "keep.jpg").write_bytes(b"x")
    with pytest.raises(BundleDestinationError, match=r"photos: holds files edgesam did not write \(keep.jpg\)"):
        export_bundle(tiny_model[0], out, ExportConfig(), progress=False)
    assert (out / "keep.jpg").exists()


def test_a_bundle_folder_with_a_user_file_is_refused_and_overwrite_keeps_that_file(fp32_bundle, tmp_path):
    from edgesam.export.staging import staged_dir

    src, _ = fp32_bundle
    out = tmp_path / "bundle"
    shutil.copytree(src, out)
    (out / "notes.txt").write_text("line 3 settings\n")  # the user's, not listed in the manifest
    with pytest.raises(BundleDestinationError, match=r"notes.txt"):
        with staged_dir(out):
            pass
    with staged_dir(out, overwrite=True) as tmp:
        (tmp / MANIFEST_NAME).write_text('{"new": true}')
    assert (out / "notes.txt").read_text() == "line 3 settings\n"
    assert (out / MANIFEST_NAME).read_text() == '{"new": true}'
    assert _leftovers(tmp_path) == []


def _staging_folder(parent, name, owner_pid, files=("encoder.onnx",)):
    import socket

    folder = parent / name
    folder.mkdir()
    for f in files:
        (folder / f).write_bytes(b"x")
    (folder / ".edgesam-owner").write_text(f"{socket.gethostname()} {owner_pid}\n")
    return folder


def test_next_export_cleans_what_killed_exports_left(tmp_path):
    import os
    import subprocess

    from edgesam.export.staging import staged_dir

    dead = subprocess.Popen(["true"])
    dead.wait()  # a process id that no longer runs, as a killed export's
    out = tmp_path / "bundle"
    _staging_folder(tmp_path, ".bundle.partial-killed", dead.pid)
    _staging_folder(tmp_path, ".bundle.partial-running", os.getpid())  # a concurrent export: kept
    killed_mid_swap = _staging_folder(tmp_path, ".bundle.old-killed", dead.pid, files=())
    (killed_mid_swap / "bundle").mkdir()
    (killed_mid_swap / "bundle" / MANIFEST_NAME).write_text('{"previous": true}')
    (tmp_path / ".photos.partial-x").mkdir()  # another destination's: not ours

    with staged_dir(out) as tmp:
        assert (out / MANIFEST_NAME).read_text() == '{"previous": true}'  # put back before anything else
        (tmp / MANIFEST_NAME).write_text('{"new": true}')
    assert (out / MANIFEST_NAME).read_text() == '{"new": true}'
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST_NAME]
    assert _leftovers(tmp_path) == [".bundle.partial-running", ".photos.partial-x"]


def test_calib_build_replaces_only_a_calibration_set(tmp_path):
    from edgesam.data import synthesize_dataset
    from edgesam.export.calib_select import build_calibration_set

    src = synthesize_dataset(tmp_path / "src", count=4, seed=0, size=48)
    out = tmp_path / "photos"
    out.mkdir()
    (out / "keep.jpg").write_bytes(b"x")
    with pytest.raises(BundleDestinationError, match=r"photos: holds files edgesam did not write \(keep.jpg\)"):
        build_calibration_set(src, out, 2)
    assert sorted(p.name for p in out.iterdir()) == ["keep.jpg"]
    first = build_calibration_set(src, tmp_path / "calib", 2)
    second = build_calibration_set(src, tmp_path / "calib", 3)  # an earlier set is replaced
    assert (first["count"], second["count"]) == (2, 3) and len(list((tmp_path / "calib").glob("*.png"))) == 3
    assert _leftovers(tmp_path) == []
