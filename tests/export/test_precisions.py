"""FP16 and INT8 graph sets, and the official-style decoder: structure, ONNX Runtime runs, parity."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from edgesam.export import ExportConfig, export_bundle
from edgesam.export import checks
from edgesam.export.calibration import CalibrationError, ImageCalibrationReader, resolve_calibration_images
from edgesam.export.quantize import quantize_graph, quantized_nodes
from edgesam_runtime.manifest import verify_graphs
from tests.tolerances import EXPORT_FP16_MASK_IOU_MIN, EXPORT_INT8_MASK_IOU_MIN, EXPORT_FP32_LOGITS_ATOL

# vit_t has 6 blocks of 4 Linear layers (qkv, proj, lin1, lin2); patch_embed and neck stay float.
VIT_T_QUANTIZED_WEIGHTS = 6 * 4


def _run(bundle, graph_set, manifest):
    ref = checks.reference_sample(_run.model)
    enc = bundle / manifest["graphs"][graph_set]["encoder"]["file"]
    dec = bundle / manifest["graphs"][graph_set]["decoder"]["file"]
    return checks.measure(enc, dec, ref)


@pytest.mark.slow
def test_every_set_is_listed_verified_and_runs(full_bundle, tiny_model):
    out, manifest = full_bundle
    assert set(manifest["graphs"]) == {"fp32", "fp16", "int8"}
    _run.model = tiny_model[0]
    for graph_set in manifest["graphs"]:
        verify_graphs(out, manifest, graph_set)
    # the recorded figures are what ONNX Runtime gives on the files (deterministic on CPU)
    figures = _run(out, "int8", manifest)
    recorded = manifest["checks"]["int8"]
    assert figures["empty_references"] == recorded["empty_references"]
    numbers = {k: v for k, v in figures.items() if k != "empty_references"}
    assert numbers == pytest.approx({k: recorded[k] for k in numbers}, rel=1e-4, abs=1e-6)
    for name, floor in (("fp16", EXPORT_FP16_MASK_IOU_MIN), ("int8", EXPORT_INT8_MASK_IOU_MIN)):
        # the PyTorch masks are (mostly) real, so the IoU figure measures something
        assert manifest["checks"][name]["reference_empty"] <= 0.1 * manifest["checks"][name]["num_masks"]
        assert manifest["checks"][name]["mask_iou_mean"] >= floor
    # quantization is real: the int8 embeddings differ from fp32 by more than float rounding
    assert manifest["checks"]["int8"]["embed_max_abs"] > 100 * manifest["checks"]["fp32"]["embed_max_abs"]


def test_fp16_keeps_float32_io_and_fragile_ops(full_bundle):
    out, manifest = full_bundle
    graph = onnx.shape_inference.infer_shapes(onnx.load(out / "encoder.fp16.onnx"))
    for tensor in list(graph.graph.input) + list(graph.graph.output):
        assert tensor.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    halves = [t for t in graph.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    types = {v.name: v.type.tensor_type.elem_type for v in list(graph.graph.value_info) + list(graph.graph.input)}
    norms = [n for n in graph.graph.node if n.op_type in ("LayerNormalization", "Softmax")]
    assert norms and all(types.get(n.input[0]) == onnx.TensorProto.FLOAT for n in norms)
    # weights are half but for the kept heads (the neck's ~0.6 M of the tiny encoder's ~3.3 M parameters)
    fulls = [t for t in graph.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    n_half, n_full = (sum(int(np.prod(t.dims)) for t in ts) for ts in (halves, fulls))
    assert n_half > 0.7 * (n_half + n_full)
    assert manifest["graphs"]["fp16"]["encoder"]["fp32_nodes"] >= len(norms)


def test_int8_encoder_has_the_expected_qdq_nodes_and_exclusions(full_bundle):
    out, manifest = full_bundle
    q = manifest["quantization"]["int8"]
    graph = onnx.load(out / "encoder.int8.onnx")
    int8_inits = {t.name for t in graph.graph.initializer if t.data_type == onnx.TensorProto.INT8}
    ops = [n.op_type for n in graph.graph.node]
    # int8 weights (biases of fused Gemms are int32 and not counted)
    weight_dq = [n for n in graph.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in int8_inits]
    assert len(weight_dq) == VIT_T_QUANTIZED_WEIGHTS
    assert ops.count("QuantizeLinear") == q["encoder"]["quantize_linear"] > VIT_T_QUANTIZED_WEIGHTS
    assert ops.count("DequantizeLinear") == q["encoder"]["dequantize_linear"]
    # per-channel weights: one scale per output channel
    scales = {t.name: t for t in graph.graph.initializer}
    assert all(int(np.prod(scales[n.input[1]].dims)) > 1 for n in weight_dq)
    # nothing the manifest lists as excluded runs in integer, and everything else of the types does
    excluded = set(manifest["graphs"]["int8"]["encoder"]["excluded_nodes"])
    assert excluded == set(q["excluded_nodes"]["encoder"])
    assert any("/neck/" in n for n in excluded) and any("/patch_embed/" in n for n in excluded)
    quantized = set(quantized_nodes(graph, q["op_types"]))
    assert quantized and not quantized & excluded
    names = {n.name for n in graph.graph.node}
    assert {n for n in excluded if n in names}, "excluded nodes must survive into the int8 graph"
    assert not any(n.op_type in q["excluded_op_types"] and n.name in quantized for n in graph.graph.node)
    # the decoder of the int8 set is the fp32 file by default
    assert manifest["graphs"]["int8"]["decoder"]["file"] == "decoder.onnx"
    assert manifest["graphs"]["int8"]["decoder"]["precision"] == "fp32"
    assert q["calibration"]["count"] == 8 and len(q["calibration"]["sha256"]) == 64


@pytest.mark.slow
def test_calibration_cache_is_reused(full_bundle, export_config, tmp_path):
    out, manifest = full_bundle
    images = resolve_calibration_images(export_config.calib_data, export_config.calib_max_images)

    class NoReads(ImageCalibrationReader):
        def get_next(self):
            raise AssertionError("a cache hit must not read calibration images")

    info = quantize_graph(out / "encoder.onnx", tmp_path / "again.onnx", NoReads(images, 64), export_config,
                          manifest["quantization"]["int8"]["calibration"]["sha256"], lambda m: None)
    assert info["cache"]["hit"] and info["cache"]["key"] == manifest["quantization"]["int8"]["encoder"]["cache"]["key"]
    assert (tmp_path / "again.onnx").read_bytes() == (out / "encoder.int8.onnx").read_bytes()


def test_int8_without_calibration_data_is_refused(tiny_model, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    (empty / "masks").mkdir(parents=True)
    (empty / "masks" / "a.png").write_bytes(b"label folders are not calibration images")
    with pytest.raises(CalibrationError, match="empty: no images .*--calib-data"):
        export_bundle(tiny_model[0], tmp_path / "b", ExportConfig(precisions=("int8",), calib_data=str(empty)),
                      progress=False)
    monkeypatch.setattr("edgesam.export.config.default_calibration_dir", lambda: tmp_path / "nowhere")
    with pytest.raises(CalibrationError, match="default calibration set is not a folder"):
        export_bundle(tiny_model[0], tmp_path / "b", ExportConfig(precisions=("int8",)), progress=False)
    assert not (tmp_path / "b").exists()


def test_default_calibration_set_is_found():
    images = resolve_calibration_images(None, 16)
    assert len(images) == 16 and all(p.suffix == ".png" for p in images)
    assert sum(p.stat().st_size for p in images) < 1 << 20


@pytest.mark.slow
def test_official_decoder_matches_ours(full_bundle):
    out, manifest = full_bundle
    assert manifest["official_decoder"]["file"] == "decoder.official.onnx"
    official = checks.cpu_session(out / "decoder.official.onnx")
    ours = checks.cpu_session(out / "decoder.onnx")
    assert [i.name for i in official.get_inputs()][-1] == "orig_im_size"
    rng = np.random.default_rng(3)
    emb = rng.normal(size=(1, 256, 4, 4)).astype(np.float32)
    coords = (rng.random((1, 4, 2)) * 64).astype(np.float32)
    labels = np.array([[1, 0, 2, 3]], np.float32)
    feeds = checks.decoder_feeds(emb, coords, labels)
    masks, iou, low = official.run(None, {**feeds, "orig_im_size": np.array([50, 70], np.float32)})
    low_ours, iou_ours = ours.run(None, feeds)
    assert masks.shape == (1, 4, 50, 70)
    np.testing.assert_allclose(low, low_ours, atol=EXPORT_FP32_LOGITS_ATOL)
    np.testing.assert_allclose(iou, iou_ours, atol=EXPORT_FP32_LOGITS_ATOL)


def test_exclusion_rules_on_a_small_graph():
    from onnx import TensorProto, helper

    from edgesam.export.quantize import excluded_nodes

    w = onnx.numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["a"], name="/blocks.0/attn/qkv/MatMul"),
        helper.make_node("MatMul", ["a", "x"], ["b"], name="/blocks.0/attn/MatMul"),
        helper.make_node("Softmax", ["b"], ["c"], name="/blocks.0/attn/Softmax"),
        helper.make_node("MatMul", ["c", "w"], ["y"], name="/neck/MatMul"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])], [w])
    model = helper.make_model(graph)
    assert excluded_nodes(model, ["MatMul"], ["Softmax"], ["/neck/"]) == ["/blocks.0/attn/Softmax", "/neck/MatMul"]
    assert excluded_nodes(model, ["MatMul"], [], [], matmul_const_only=True) == ["/blocks.0/attn/MatMul"]
