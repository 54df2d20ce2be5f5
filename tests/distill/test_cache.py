"""The teacher cache: keyed by the exact input and the teacher's weights, fp16, and resumable after SIGKILL."""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from edgesam_runtime import geometry
from edgesam.data import AugmentConfig, read_image
from edgesam.distill.cache import TeacherCache, fill
from edgesam.distill.models import load_teacher
from edgesam.distill.views import ViewMaker
from edgesam_runtime.roi import WHOLE_IMAGE
from tests.distill.conftest import IMAGE_SIZE, make_teacher
from tests.killing import child_env

pytestmark = pytest.mark.slow  # long integration tests: CI runs them (`pytest -m slow`)

REPO = Path(__file__).resolve().parents[2]


def _maker(**changes):
    args = dict(image_size=IMAGE_SIZE, framing=WHOLE_IMAGE, augment=AugmentConfig(), seed=0)
    args.update(changes)
    return ViewMaker(**args)


def _image(line_dir, name="crack/images/crack_000.png"):
    return read_image(Path(line_dir) / name)


def test_view_zero_is_the_inference_input_and_views_differ(line_dir):
    image = _image(line_dir)
    maker = _maker()
    views = [maker.view(image, i) for i in range(6)]
    np.testing.assert_array_equal(views[0].x, geometry.preprocess(image, IMAGE_SIZE)[0])
    assert len({v.key for v in views}) >= 4  # augmented (a view may draw no change at all and equal view 0)
    again = _maker().view(image, 3)
    assert again.key == views[3].key and np.array_equal(again.x, views[3].x)


def test_keys_change_with_image_augmentation_size_and_seed(line_dir):
    image = _image(line_dir)
    key = _maker().view(image, 2).key
    assert _maker().view(_image(line_dir, "pit/images/pit_000.png"), 2).key != key
    assert _maker(augment=AugmentConfig(noise_p=1.0, noise_std=0.05)).view(image, 2).key != key
    assert _maker(image_size=96).view(image, 2).key != key
    assert _maker(seed=1).view(image, 2).key != key
    changed = image.copy()
    changed[0, 0] ^= 1  # one pixel
    assert _maker().view(changed, 0).key != _maker().view(image, 0).key


def test_cache_folder_changes_with_teacher_weights_and_backend(tmp_path):
    import dataclasses

    a = load_teacher(make_teacher(tmp_path / "a.pth", seed=0))
    b = load_teacher(make_teacher(tmp_path / "b.pth", seed=1))
    assert a.cache_id != b.cache_id
    assert dataclasses.replace(a, backend="onnx").cache_id != a.cache_id
    assert load_teacher(tmp_path / "a.pth").cache_id == a.cache_id
    assert load_teacher(tmp_path / "a.pth", image_size=96).cache_id != a.cache_id


def test_entries_are_fp16_and_a_fill_reuses_them(tmp_path, teacher_path, line_dir):
    teacher = load_teacher(teacher_path)
    cache = TeacherCache(tmp_path, teacher.cache_id, teacher.describe())
    views = [_maker().view(_image(line_dir), i) for i in range(3)]
    encode = teacher.encoder(cache.dir)
    first = fill(cache, views, encode, len(views), progress=False)
    assert first["computed"] + first["reused"] == 3 and first["computed"] >= 2
    entry = cache.load(views[0].key)
    assert entry.dtype == np.float16 and entry.shape == (256, IMAGE_SIZE // 16, IMAGE_SIZE // 16)
    np.testing.assert_allclose(entry.astype(np.float32), encode(views[0].x)[0], atol=1e-2, rtol=1e-3)
    second = fill(cache, views, encode, len(views), progress=False)
    assert (second["computed"], second["reused"]) == (0, 3)
    with pytest.raises(KeyError, match="fill the cache first"):
        cache.load("0" * 64)


def test_onnx_backend_matches_torch(tmp_path, teacher_path, line_dir):
    view = _maker().view(_image(line_dir), 0)
    torch_out = load_teacher(teacher_path).encoder(tmp_path)(view.x)
    onnx_out = load_teacher(teacher_path, backend="onnx").encoder(tmp_path, threads=1)(view.x)
    assert (tmp_path / "encoder.onnx").is_file()
    np.testing.assert_allclose(onnx_out, torch_out, atol=1e-4, rtol=0)


@pytest.mark.parametrize("backend, rel_err", [("openvino", 1e-5), ("openvino_bf16", 2e-2)])
def test_openvino_backends_match_torch_within_their_precision(tmp_path, teacher_path, line_dir, backend, rel_err):
    from edgesam_runtime.backends.ov import available

    if not available():
        pytest.skip("openvino is not installed")
    view = _maker().view(_image(line_dir), 0)
    torch_out = load_teacher(teacher_path).encoder(tmp_path)(view.x)
    got = load_teacher(teacher_path, backend=backend).encoder(tmp_path, threads=1)(view.x)
    assert got.shape == torch_out.shape and np.abs(torch_out).mean() > 0
    assert np.abs(got - torch_out).mean() / np.abs(torch_out).mean() < rel_err


def test_auto_picks_the_fastest_teacher_backend_per_cpu_class():
    from edgesam.distill.models import teacher_backend

    amx = {"isa": "amx", "amx": True, "flags": {"avx512_bf16": True, "amx_bf16": True}}
    avx2 = {"isa": "avx2", "amx": False, "flags": {"avx2": True}}
    assert teacher_backend("auto", amx, openvino=True)[0] == "openvino_bf16"
    assert teacher_backend("auto", avx2, openvino=True)[0] == "openvino"
    assert teacher_backend("auto", amx, openvino=False)[0] == "onnx"
    assert teacher_backend("torch", amx, openvino=True) == ("torch", "asked for")


FILL_SCRIPT = textwrap.dedent("""
    import sys, time
    import torch
    from edgesam.distill.cache import TeacherCache, fill
    from edgesam.distill.models import load_teacher
    from tests.distill.test_cache import cache_views

    torch.set_num_threads(1)
    teacher_path, line_dir, root = sys.argv[1:4]
    teacher = load_teacher(teacher_path)
    cache = TeacherCache(root, teacher.cache_id, teacher.describe())
    encode = teacher.encoder(cache.dir)

    def slow(x):  # slow enough that the parent's SIGKILL lands mid-fill
        time.sleep(0.15)
        return encode(x)

    views = cache_views(line_dir)
    fill(cache, views, slow, len(views), progress=False,
         report=lambda c: print("computed", c["computed"], flush=True), report_every=1)
""")


def cache_views(line_dir) -> list:
    """8 views (2 images x 4) used by the kill test and its subprocess."""
    maker = _maker()
    names = ["crack/images/crack_000.png", "free/images/free_000.png"]
    return [maker.view(_image(line_dir, n), i) for n in names for i in range(4)]


def test_fill_resumes_after_sigkill_without_recomputing(tmp_path, teacher_path, line_dir):
    torch.set_num_threads(1)
    killed_root, clean_root = tmp_path / "killed", tmp_path / "clean"
    env = child_env()  # this checkout's edgesam and edgesam_runtime, one thread
    proc = subprocess.Popen([sys.executable, "-c", FILL_SCRIPT, str(teacher_path), str(line_dir), str(killed_root)],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    computed = 0
    while computed < 3:  # three entries are on disk
        line = proc.stdout.readline()
        assert line.startswith("computed"), "the fill subprocess stopped early"
        computed = int(line.split()[1])
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    teacher = load_teacher(teacher_path)
    views = cache_views(line_dir)
    unique = len({v.key for v in views})
    killed = TeacherCache(killed_root, teacher.cache_id)
    finished = killed.count()
    assert 3 <= finished < unique  # killed mid-fill; every entry on disk is whole
    before = {v.key: killed.load(v.key) for v in views if killed.has(v.key)}
    rerun = fill(killed, views, teacher.encoder(killed.dir), len(views), progress=False)
    assert rerun["computed"] == unique - finished  # finished entries were not recomputed
    clean = TeacherCache(clean_root, teacher.cache_id)
    fill(clean, views, teacher.encoder(clean.dir), len(views), progress=False)
    for v in views:
        assert np.array_equal(killed.load(v.key), clean.load(v.key))
    assert all(np.array_equal(killed.load(k), arr) for k, arr in before.items())


def test_roi_views_are_the_crops_the_predictor_cuts(line_dir):
    from edgesam_runtime import roi

    framing = roi.InputFraming(mode="roi", dense_box=True)
    image = _image(line_dir)
    view = _maker(framing=framing).view(image, 0)  # view 0: no augmentation, a random box
    want = roi.roi_inputs(geometry.to_rgb_uint8(image), None, None, view.crop_box[None], framing, IMAGE_SIZE)
    np.testing.assert_array_equal(view.x, want.images)
    np.testing.assert_array_equal(view.mask_input, want.mask_input)
    np.testing.assert_array_equal(view.coords, want.coords)
    boxes = np.stack([_maker(framing=framing).view(image, i).crop_box for i in range(8)])
    assert len({tuple(b) for b in boxes.round(1)}) == 8  # every view its own box


def test_labels_place_the_box_prompts_but_never_change_the_pixels(line_dir):
    from edgesam.data import load_dataset, tight_box

    sample = load_dataset(Path(line_dir) / "crack").load(0)
    maker = _maker(prompts=3)
    for index in (0, 2):
        plain, labelled = maker.view(sample.image, index), maker.view(sample.image, index, sample.masks)
        assert plain.key == labelled.key and np.array_equal(plain.x, labelled.x)
        assert labelled.coords.shape == plain.coords.shape == (3, 2, 2)
    box = geometry.transform_boxes(tight_box(sample.masks[0])[None], sample.image.shape[:2], IMAGE_SIZE)[0]
    got = maker.view(sample.image, 0, sample.masks).coords[0].reshape(4)
    side = float(max(box[2] - box[0], box[3] - box[1]))
    assert np.abs(got - box).max() <= 0.5 * side + 1, (got, box)  # view 0: a jittered box on the object
