"""What a line PC installs: the runtime distribution alone, in a fresh virtual environment.

`pip install ./runtime` into an empty venv must bring no torch, torchvision, segment-anything or peft and
stay within 200 MB of site-packages (the venv is made without pip, which installs into it from outside:
its site-packages then holds the runtime and its requirements only, as on a line PC); from there (isolated: no PYTHONPATH, not run from the checkout) it
opens the bundle the toolchain exported and segments with it as the toolchain's own environment does.
The import time of `edgesam_runtime` is measured there and recorded with the test's properties.

pip fetches numpy, Pillow, onnxruntime, jsonschema and PyYAML from the package index (CI has it); on a
machine without one, set EDGESAM_OFFLINE=1 to skip this test by name rather than fail it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesam_runtime import geometry
from tests.tolerances import RUNTIME_LOGITS_ATOL

RUNTIME_SOURCE = Path(__file__).resolve().parents[2] / "runtime"
TOOLCHAIN_ONLY = ("torch", "torchvision", "segment-anything", "peft")  # distribution names
MAX_SITE_PACKAGES_MB = 200
BOXES = [[10, 10, 80, 60], [40, 20, 130, 85], [0, 0, 140, 90]]

# Runs inside the runtime-only venv: import (timed), open the bundle, segment, report what is installed.
PROBE = r"""
import importlib.metadata, json, sys, sysconfig, time
start = time.perf_counter()
from edgesam_runtime import Segmenter
import_s = time.perf_counter() - start
import numpy as np
bundle, image_path, out_path = sys.argv[1:4]
result = Segmenter.open(bundle, backend="onnxruntime", threads=1).segment_image(
    np.load(image_path), [{"type": "box", "data": box} for box in json.loads(sys.argv[4])])
np.savez(out_path, masks=result.masks, scores=result.scores, low_res_logits=result.low_res_logits)
print(json.dumps({
    "import_s": import_s,
    "distributions": sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions()),
    "torch_imported": any(name.split(".")[0] == "torch" for name in sys.modules),
    "site_packages": sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}),
}))
"""


def _clean_env() -> dict:
    """The environment without what would let the venv see the checkout or the toolchain's venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(cmd, cwd, timeout) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def runtime_venv(tmp_path_factory) -> Path:
    """A fresh venv (no pip of its own) with `pip install runtime/` (a copy of it, so no build files land in
    the checkout), installed by this environment's pip through `--python`."""
    if os.environ.get("EDGESAM_OFFLINE") == "1":
        pytest.skip("EDGESAM_OFFLINE=1: installing the runtime distribution needs the package index")
    root = tmp_path_factory.mktemp("runtime_only")
    source = root / "runtime"
    shutil.copytree(RUNTIME_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    python = venv / "bin" / "python"
    installed = _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", source], cwd=root,
                     timeout=1200)
    assert installed.returncode == 0, f"pip install runtime/ failed:\n{installed.stderr[-3000:]}"
    return python


@pytest.fixture(scope="module")
def probe(runtime_venv, bundle_dir, make_image, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("probe")
    image_path, out_path = work / "image.npy", work / "result.npz"
    np.save(image_path, make_image())
    ran = _run([runtime_venv, "-I", "-c", PROBE, bundle_dir, image_path, out_path, json.dumps(BOXES)],
               cwd=work, timeout=600)
    assert ran.returncode == 0, f"the runtime-only venv could not segment:\n{ran.stderr[-3000:]}"
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    with np.load(out_path) as arrays:
        report["arrays"] = {name: arrays[name] for name in arrays.files}
    return report


def _megabytes(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


@pytest.mark.slow
def test_the_runtime_installs_without_the_toolchain_and_stays_small(probe, record_property):
    assert "edgesam-runtime" in probe["distributions"] and "onnxruntime" in probe["distributions"]
    assert not set(TOOLCHAIN_ONLY) & set(probe["distributions"]), probe["distributions"]
    assert "edgesam" not in probe["distributions"]
    assert not probe["torch_imported"]
    size_mb = sum(_megabytes(Path(folder)) for folder in probe["site_packages"])
    record_property("site_packages_mb", round(size_mb, 1))
    record_property("import_edgesam_runtime_s", round(probe["import_s"], 3))
    print(f"runtime-only venv: site-packages {size_mb:.1f} MB; `from edgesam_runtime import Segmenter` "
          f"{probe['import_s']:.2f} s")
    assert 0 < size_mb <= MAX_SITE_PACKAGES_MB


@pytest.mark.slow
def test_the_runtime_alone_segments_like_the_toolchains_environment(probe, bundle_dir, make_image):
    """The same bundle, image and boxes: the venv's masks match this environment's runtime."""
    from edgesam_runtime import Segmenter

    image = make_image()
    segmenter = Segmenter.open(bundle_dir, backend="onnxruntime", threads=1)
    here = segmenter.segment_image(image, [{"type": "box", "data": box} for box in BOXES])
    there = probe["arrays"]
    assert there["masks"].shape == here.masks.shape
    assert here.masks.any() and there["masks"].any()  # equal empty masks would prove nothing
    # another onnxruntime build (the index's newest) may reorder float32 sums: the runtime's tolerance
    assert np.abs(there["low_res_logits"] - here.low_res_logits).max() <= RUNTIME_LOGITS_ATOL
    np.testing.assert_allclose(there["scores"], here.scores, atol=RUNTIME_LOGITS_ATOL)
    differ = there["masks"] != here.masks
    if differ.any():  # only pixels whose logit sits within the tolerance of the threshold may flip
        logits = geometry.upscale_logits(here.low_res_logits, image.shape[:2], segmenter.image_size)
        assert np.abs(logits[differ]).max() <= RUNTIME_LOGITS_ATOL
