"""OpenVINO IR sets: what the manifest records, that each set runs through the runtime with its
precision's accuracy, that int8 is really quantized where the ignored scopes allow, and refusals."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgesam.export import ExportConfig
from edgesam.utils.config import ConfigError
from edgesam_runtime.manifest import MANIFEST_NAME, verify_graphs
from tests.tolerances import EXPORT_INT8_MASK_IOU_MIN, RUNTIME_LOGITS_ATOL

pytestmark = pytest.mark.slow  # long integration tests: CI runs them (`pytest -m slow`)

OV_SETS = ("ov_fp32", "ov_bf16", "ov_int8")


def test_manifest_records_sets_precisions_calibration_scopes_and_cpu(ov_bundle, calib_dir):
    out, manifest = ov_bundle
    assert set(manifest["graphs"]) == {"fp32", *OV_SETS}  # only the fp32 ONNX source besides the IR sets
    for name, precision, runs_in in (("ov_fp32", "fp32", "fp32"), ("ov_bf16", "bf16", "bf16"), ("ov_int8", "int8", "bf16")):
        encoder = manifest["graphs"][name]["encoder"]
        assert encoder["format"] == "openvino" and encoder["precision"] == precision
        assert encoder["file"].endswith(".xml") and encoder["external_data"][0]["file"].endswith(".bin")
        assert encoder["openvino"]["inference_precision"] == runs_in
        verify_graphs(out, manifest, name)
        assert manifest["checks"][name]["mask_iou_mean"] > 0 and manifest["checks"][name]["executed_as"]
    assert manifest["graphs"]["ov_int8"]["decoder"]["file"] == manifest["graphs"]["ov_fp32"]["decoder"]["file"]
    q = manifest["quantization"]["ov_int8"]
    assert q["method"] == "nncf.quantize" and q["model_type"] == "transformer" and q["preset"] == "mixed"
    assert q["calibration"]["count"] == 4 and len(q["calibration"]["sha256"]) == 64
    assert q["calibration"]["source"].startswith(str(calib_dir))
    assert set(q["ignored_scope"]["types"]) == {"MVN", "SoftMax"}
    assert any("neck" in p for p in q["ignored_scope"]["patterns"])
    assert set(q["built_on_cpu"]["flags"]) >= {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile"}
    assert manifest["versions"]["cpu"]["flags"] == q["built_on_cpu"]["flags"]


def _fake_quantizers(path):
    import openvino as ov

    model = ov.Core().read_model(str(path))
    return [op for op in model.get_ordered_ops() if op.get_type_name() == "FakeQuantize"]


def test_int8_is_quantized_outside_the_ignored_scopes(ov_bundle):
    out, manifest = ov_bundle
    fqs = _fake_quantizers(out / manifest["graphs"]["ov_int8"]["encoder"]["file"])
    assert len(fqs) >= 6 * 4  # at least the inputs of vit_t's 24 Linear layers
    assert not _fake_quantizers(out / manifest["graphs"]["ov_fp32"]["encoder"]["file"])
    consumers = [t.get_node() for fq in fqs for t in fq.output(0).get_target_inputs()]
    assert not [c.get_friendly_name() for c in consumers if "/neck/" in c.get_friendly_name()
                or "/patch_embed/" in c.get_friendly_name() or c.get_type_name() in ("MVN", "Softmax")]
    # quantization is real: int8 embeddings differ from fp32 by more than float rounding
    assert manifest["checks"]["ov_int8"]["embed_max_abs"] > 100 * manifest["checks"]["ov_fp32"]["embed_max_abs"]


@pytest.mark.parametrize("graph_set", OV_SETS)
def test_each_set_runs_through_the_segmenter(ov_bundle, graph_set, tmp_path, monkeypatch):
    from edgesam_runtime import Segmenter

    monkeypatch.setenv("EDGESAM_OPENVINO_CACHE", str(tmp_path))
    out, _ = ov_bundle
    rng = np.random.default_rng(0)
    image = (rng.random((90, 140)) * 255).astype(np.uint8)
    boxes = [[10, 10, 80, 60], [40, 20, 130, 85], [0, 0, 140, 90]]
    reference = Segmenter.open(out, "fp32", backend="onnxruntime", threads=1).segment_image(
        image, [{"type": "box", "data": b} for b in boxes])
    seg = Segmenter.open(out, graph_set, threads=1)  # auto: IR runs on OpenVINO
    assert seg.backend.name == "openvino" and "only on OpenVINO" in seg.backend.choice
    result = seg.segment_image(image, [{"type": "box", "data": b} for b in boxes])
    if graph_set != "ov_int8":  # fp32, and bf16 where it ran in fp32, match the ONNX fp32 set
        if seg.backend.execution_precision["encoder"] == "fp32":
            assert np.abs(result.low_res_logits - reference.low_res_logits).max() <= 10 * RUNTIME_LOGITS_ATOL
        return
    ref, got = reference.masks[:, 0], result.masks[:, 0]
    keep = ref.reshape(len(ref), -1).any(axis=1)
    assert keep.any(), "the reference masks are all empty: IoU would prove nothing"
    inter = (ref & got).reshape(len(ref), -1).sum(1)[keep]
    union = (ref | got).reshape(len(ref), -1).sum(1)[keep]
    assert (inter / union).mean() >= EXPORT_INT8_MASK_IOU_MIN
    # an int8 encoder with bf16 float parts never comes from the compiled-model cache (its import corrupted
    # memory); its float decoder does
    again = Segmenter.open(out, graph_set, threads=1, warmup=False)
    bf16 = again.backend.execution_precision["encoder"] == "bf16"
    assert again.backend.encoder.loaded_from_cache is not bf16 and again.backend.decoder.loaded_from_cache


def test_tampered_weights_are_refused(ov_bundle, tmp_path):
    from edgesam_runtime import BundleError, Segmenter

    out, manifest = ov_bundle
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    weights = copy / manifest["graphs"]["ov_fp32"]["encoder"]["external_data"][0]["file"]
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"encoder.ov_fp32.bin: sha256 differs .*tampered"):
        Segmenter.open(copy, "ov_fp32", warmup=False)
    manifest_path = copy / MANIFEST_NAME
    edited = json.loads(manifest_path.read_text())
    edited["graphs"]["ov_fp32"]["encoder"]["external_data"][0]["file"] = "missing.bin"
    manifest_path.write_text(json.dumps(edited))
    with pytest.raises(BundleError, match="missing.bin: listed in the manifest"):
        Segmenter.open(copy, "ov_fp32", warmup=False)


def test_onnxruntime_cannot_run_ir_and_bf16_needs_the_openvino_format(ov_bundle):
    from edgesam_runtime import BundleError, Segmenter

    out, _ = ov_bundle
    with pytest.raises(BundleError, match="holds openvino graphs; backend 'onnxruntime' cannot run them"):
        Segmenter.open(out, "ov_fp32", backend="onnxruntime")
    with pytest.raises(ConfigError, match="bf16 graphs are OpenVINO IR"):
        ExportConfig(precisions=("fp32", "bf16"))
    assert ExportConfig(formats=("openvino",), precisions=("fp32", "int8")).onnx_precisions == ("fp32",)
    assert ExportConfig(formats=("onnx", "ov"), precisions=("int8", "bf16")).openvino_precisions == ("int8", "bf16")


def test_accuracy_control_metric_is_embedding_agreement():
    from edgesam.export.openvino import embedding_agreement

    class Request:
        def __init__(self, scale):
            self.scale = scale

        def infer(self, inputs):
            return [inputs[0] * self.scale]

    class Compiled:
        def __init__(self, scale):
            self.scale = scale

        def create_infer_request(self):
            return Request(self.scale)

    x = np.ones((1, 4), np.float32)
    items = [(x, x), (2 * x, 2 * x)]
    assert embedding_agreement(Compiled(1.0), items) == (1.0, [1.0, 1.0])
    mean, scores = embedding_agreement(Compiled(1.1), items)
    assert mean == pytest.approx(0.9) and scores == pytest.approx([0.9, 0.9])
