"""Bad calls raise typed, readable errors and leave the segmenter usable; bad bundles are refused."""
from __future__ import annotations

from types import SimpleNamespace

import json
import shutil

import numpy as np
import pytest

from edgesam_runtime import manifest as mf
from edgesam_runtime import BackendError, BundleError, InvalidInputError, RuntimeErrorBase, Segmenter
from edgesam_runtime.backends.trt import check_compatible

BOX = [[10, 10, 80, 60]]


def good_call(segmenter, make_image):
    emb = segmenter.encode(make_image())
    return segmenter.segment(emb, boxes=BOX)


BAD_IMAGES = {
    "float image": (np.zeros((40, 40), np.float32), "dtype uint8 or uint16"),
    "list": ([[1, 2], [3, 4]], "numpy array"),
    "5 channels": (np.zeros((40, 40, 5), np.uint8), "HxWx3"),
    "empty": (np.zeros((0, 40), np.uint8), "empty"),
}


@pytest.mark.parametrize("name", sorted(BAD_IMAGES))
def test_bad_image_is_refused_and_segmenter_survives(name, segmenter, make_image):
    image, message = BAD_IMAGES[name]
    with pytest.raises(InvalidInputError, match=message):
        segmenter.encode(image)
    assert good_call(segmenter, make_image).masks.shape == (1, 1, 90, 140)


BAD_PROMPTS = {
    "nan point": (dict(points=[[np.nan, 3]], labels=[1]), "NaN"),
    "point outside": (dict(points=[[150, 3]], labels=[1]), "outside the 140x90"),
    "negative box": (dict(boxes=[[-5, 0, 20, 20]]), "outside"),
    "inverted box": (dict(boxes=[[50, 50, 20, 20]]), "x0 <= x1"),
    "box shape": (dict(boxes=[[1, 2, 3]]), r"\(B, 4\)"),
    "labels missing": (dict(points=[[1, 2]]), "give both"),
    "label value": (dict(points=[[1, 2]], labels=[2]), "expected 1"),
    "labels shape": (dict(points=[[1, 2], [3, 4]], labels=[1]), "labels: expected shape"),
    "too many points": (dict(points=[[1, 1]] * 17, labels=[1] * 17), "at most 16"),
    "too many boxes": (dict(boxes=[[1, 1, 5, 5]] * 65), "at most 64"),
    "no prompt": (dict(), "give points"),
    "mask shape": (dict(boxes=BOX, mask_input=np.zeros((1, 1, 8, 8), np.float32)), "mask_input: expected"),
    "mask nan": (dict(boxes=BOX, mask_input=np.full((16, 16), np.nan, np.float32)), "NaN"),
    "text coords": (dict(points=[["a", "b"]], labels=[1]), "expected numbers"),
}


@pytest.mark.parametrize("name", sorted(BAD_PROMPTS))
def test_bad_prompt_is_refused_and_segmenter_survives(name, segmenter, make_image):
    kwargs, message = BAD_PROMPTS[name]
    emb = segmenter.encode(make_image())
    with pytest.raises(InvalidInputError, match=message):
        segmenter.segment(emb, **kwargs)
    assert segmenter.segment(emb, boxes=BOX).masks.shape == (1, 1, 90, 140)


def test_foreign_embedding_and_prompt_file_errors(segmenter, make_image):
    emb = segmenter.encode(make_image())
    with pytest.raises(InvalidInputError, match="Embedding"):
        segmenter.segment(emb.features, boxes=BOX)
    foreign = type(emb)(np.zeros((1, 256, 8, 8), np.float32), emb.original_hw, emb.resized_hw, 128)
    with pytest.raises(InvalidInputError, match="another bundle"):
        segmenter.segment(foreign, boxes=BOX)
    with pytest.raises(InvalidInputError, match=r"prompts\[0\]"):
        segmenter.segment_image(make_image(), [{"type": "circle", "data": [1, 2]}])
    with pytest.raises(InvalidInputError, match="not a readable JSON prompt file"):
        segmenter.segment_image(make_image(), "/nonexistent/prompts.json")
    assert isinstance(InvalidInputError("x"), RuntimeErrorBase) and isinstance(InvalidInputError("x"), ValueError)


def break_decoder(backend, monkeypatch):
    """Make the backend's own inference call fail, below the backend's error handling."""
    def boom(*_, **__):
        raise RuntimeError("device lost")

    if backend.name == "onnxruntime":
        monkeypatch.setattr(backend.decoder.session, "run", boom)
    else:
        monkeypatch.setattr(backend.decoder, "_for_shapes", lambda inputs: SimpleNamespace(infer=boom))


def test_backend_failure_is_typed(segmenter, monkeypatch, make_image):
    break_decoder(segmenter.backend, monkeypatch)
    emb = segmenter.encode(make_image())
    with pytest.raises(BackendError, match="device lost"):
        segmenter.segment(emb, boxes=BOX)
    monkeypatch.undo()
    assert segmenter.segment(emb, boxes=BOX).masks.shape == (1, 1, 90, 140)


@pytest.fixture
def copy_bundle(bundle_dir, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(bundle_dir, out)
    return out


def edit_manifest(bundle, change):
    path = bundle / mf.MANIFEST_NAME
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_tampered_graph_is_refused(copy_bundle):
    with open(copy_bundle / "decoder.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match=r"decoder.onnx: sha256 differs .*tampered"):
        Segmenter.open(copy_bundle, warmup=False)


def test_wrong_format_version_is_refused(copy_bundle):
    edit_manifest(copy_bundle, lambda m: m.update(format_version=99))
    with pytest.raises(BundleError, match="format_version 99 is not supported"):
        Segmenter.open(copy_bundle, warmup=False)


def test_missing_manifest_is_refused(copy_bundle):
    (copy_bundle / mf.MANIFEST_NAME).unlink()
    with pytest.raises(BundleError, match="manifest.json: missing"):
        Segmenter.open(copy_bundle)
    with pytest.raises(mf.BundleError):  # also catchable as the manifest module's error
        Segmenter.open(copy_bundle)


def test_graph_that_disagrees_with_manifest_is_refused(copy_bundle):
    edit_manifest(copy_bundle, lambda m: m["model"].update(image_size=128))
    with pytest.raises(BundleError, match=r"encoder.onnx: input 'image' axis 2 is 64; expected 128"):
        Segmenter.open(copy_bundle, warmup=False)


def test_unknown_graph_set_and_wrong_backend_are_refused(bundle_dir):
    with pytest.raises(BundleError, match="no graph set 'int8'"):
        Segmenter.open(bundle_dir, graph_set="int8")
    with pytest.raises(BundleError, match="holds onnx graphs; backend 'tensorrt'"):
        Segmenter.open(bundle_dir, backend="tensorrt")
    with pytest.raises(InvalidInputError, match="backend: expected one of"):
        Segmenter.open(bundle_dir, backend="nosuch")
    with pytest.raises(BackendError, match="not available"):
        Segmenter.open(bundle_dir, providers=["NoSuchExecutionProvider"])


def test_mismatched_engine_is_refused_with_a_readable_message(tmp_path):
    engine = tmp_path / "encoder.engine"
    running = {"version": "10.3.0", "compute_capability": "8.9"}
    check_compatible(engine, dict(running), running)  # same build: accepted
    with pytest.raises(BundleError, match=r"TensorRT version 10.0.1, this machine has 10.3.0.*rebuild"):
        check_compatible(engine, {"version": "10.0.1", "compute_capability": "8.9"}, running)
    with pytest.raises(BundleError, match=r"compute capability 9.0, this machine has 8.9"):
        check_compatible(engine, {"version": "10.3.0", "compute_capability": "9.0"}, running)
    with pytest.raises(BundleError, match="does not record"):
        check_compatible(engine, {"version": None, "compute_capability": "8.9"}, running)


def test_a_link_out_of_the_bundle_is_refused_even_when_no_manifest_entry_names_it(bundle_dir, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    (bundle / "encoder.onnx.data").symlink_to("/etc/passwd")  # what a graph could name as external data
    with pytest.raises(BundleError, match=r"encoder.onnx.data.*leads outside"):
        Segmenter.open(bundle, warmup=False)
