"""TensorRT: what can be checked without it (profiles, flags, the clear error); the build itself is
marked `tensorrt` and runs only where TensorRT and a GPU exist."""
from __future__ import annotations

import importlib.util

import pytest

from edgesam.export import ExportConfig, export_bundle
from edgesam.export import tensorrt as trt_mod

HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def test_decoder_profile_follows_the_prompt_limits():
    cfg = ExportConfig(max_points=5, max_boxes=12)
    prof = trt_mod.decoder_profile(cfg, image_size=256)
    assert prof["point_coords"] == ((1, 1, 2), (1, 2, 2), (12, 7, 2))  # 5 points + a box's 2 corners
    assert prof["point_labels"] == ((1, 1), (1, 2), (12, 7))
    assert prof["mask_input"] == ((1, 1, 64, 64), (1, 1, 64, 64), (12, 1, 64, 64))
    assert prof["image_embeddings"] == ((1, 256, 16, 16),) * 3
    assert set(prof) == {"image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"}
    for lo, opt, hi in prof.values():
        assert all(a <= b <= c for a, b, c in zip(lo, opt, hi))
    assert trt_mod.encoder_profile(1024)["image"][2] == (1, 3, 1024, 1024)


def test_engine_flags():
    assert trt_mod.engine_flags("fp32") == []
    assert trt_mod.engine_flags("fp16") == ["FP16"]
    assert trt_mod.engine_flags("int8") == ["INT8", "FP16"]


@pytest.mark.skipif(HAS_TRT, reason="checks the message shown where TensorRT is missing")
def test_engine_export_without_tensorrt_fails_clearly_and_early(tiny_model, tmp_path):
    with pytest.raises(trt_mod.TensorRTUnavailable, match="pip install tensorrt.*--format onnx"):
        export_bundle(tiny_model[0], tmp_path / "b", ExportConfig(formats=("trt",)), progress=False)
    assert not (tmp_path / "b").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_engines_build_and_are_listed(tiny_model, calib_dir, tmp_path):
    pytest.importorskip("tensorrt")
    model, arch = tiny_model
    cfg = ExportConfig(formats=("onnx", "engine"), precisions=("fp32", "fp16", "int8"), calib_data=str(calib_dir),
                       max_boxes=4, max_points=3, timing_cache=str(tmp_path / "timing.cache"))
    manifest = export_bundle(model, tmp_path / "b", cfg, arch=arch, progress=False)
    for name in ("trt_fp32", "trt_fp16", "trt_int8"):
        entry = manifest["graphs"][name]["encoder"]
        assert entry["format"] == "tensorrt" and (tmp_path / "b" / entry["file"]).stat().st_size > 0
        assert entry["tensorrt"]["tensorrt_version"] and entry["tensorrt"]["compute_capability"]
    assert manifest["graphs"]["trt_int8"]["decoder"]["tensorrt"]["profile"]["point_coords"][2] == [4, 5, 2]
    assert (tmp_path / "timing.cache").is_file()
