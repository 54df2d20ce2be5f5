"""The fp32 bundle: graphs, manifest, ONNX Runtime run and parity with the PyTorch model."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from edgesam_runtime import io_spec
from edgesam.export import checks
from edgesam_runtime.manifest import read_manifest, verify_graphs
from edgesam.models.decode import decode_all
from tests.tolerances import EXPORT_FP32_EMBED_ATOL, EXPORT_FP32_LOGITS_ATOL


def test_manifest_is_complete(fp32_bundle):
    out, manifest = fp32_bundle
    assert read_manifest(out) == manifest
    verify_graphs(out, manifest, "fp32")
    for key in ("model", "preprocess", "prompts", "io", "graphs", "quantization", "source", "versions", "checks"):
        assert key in manifest, key
    assert manifest["model"]["variant"] == "vit_t" and manifest["model"]["image_size"] == 64
    assert manifest["model"]["low_res_size"] == 16
    assert manifest["prompts"]["max_points"] == 16 and manifest["prompts"]["max_boxes"] == 64
    assert [t["name"] for t in manifest["io"]["decoder"]["inputs"]] == list(io_spec.DECODER_INPUTS)
    assert manifest["versions"]["onnxruntime"] and manifest["versions"]["torch"]
    assert manifest["checks"]["fp32"]["embed_max_abs"] < EXPORT_FP32_EMBED_ATOL


def test_graphs_are_opset_17_with_the_shared_names(fp32_bundle):
    out, _ = fp32_bundle
    enc, dec = onnx.load(out / "encoder.onnx"), onnx.load(out / "decoder.onnx")
    for graph in (enc, dec):
        assert {o.domain or "ai.onnx": o.version for o in graph.opset_import}["ai.onnx"] == 17
    assert [i.name for i in enc.graph.input] == [io_spec.ENCODER_INPUT]
    assert [o.name for o in dec.graph.output] == list(io_spec.DECODER_OUTPUTS)
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in dec.graph.input}
    assert dims["point_coords"] == ["num_prompts", "num_points", 2]
    assert dims["image_embeddings"] == [1, 256, 4, 4]


@pytest.mark.slow
@pytest.mark.parametrize("batch,points,with_mask", [(1, 2, False), (5, 7, True)])
def test_onnxruntime_matches_pytorch_for_any_prompt_batch(fp32_bundle, tiny_model, batch, points, with_mask):
    out, _ = fp32_bundle
    model, _ = tiny_model
    rng = np.random.default_rng(batch)
    x = rng.normal(size=(1, 3, 64, 64)).astype(np.float32)
    coords = (rng.random((batch, points, 2)) * 64).astype(np.float32)
    labels = rng.integers(-1, 4, size=(batch, points)).astype(np.float32)
    mask = rng.normal(size=(batch, 1, 16, 16)).astype(np.float32) if with_mask else None
    emb = checks.cpu_session(out / "encoder.onnx").run(None, {"image": x})[0]
    low, iou = checks.cpu_session(out / "decoder.onnx").run(None, checks.decoder_feeds(emb, coords, labels, mask))
    with torch.inference_mode():
        feats = model.image_encoder(torch.from_numpy(x))
        ref_low, ref_iou = decode_all(model, feats, torch.from_numpy(coords), torch.from_numpy(labels),
                                      None if mask is None else torch.from_numpy(mask))
    assert low.shape == (batch, 4, 16, 16) and iou.shape == (batch, 4)
    np.testing.assert_allclose(emb, feats.numpy(), atol=EXPORT_FP32_EMBED_ATOL)
    np.testing.assert_allclose(low, ref_low.numpy(), atol=EXPORT_FP32_LOGITS_ATOL)
    np.testing.assert_allclose(iou, ref_iou.numpy(), atol=EXPORT_FP32_LOGITS_ATOL)


@pytest.mark.slow
def test_exporter_is_pinned_to_torchscript(monkeypatch, tiny_model, tmp_path):
    """dynamo=False is what exports opset 17 cleanly; a silent switch back to dynamo would change the graphs."""
    from edgesam.export import onnx_export

    seen = {}
    real = torch.onnx.export

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", spy)
    onnx_export.export_official_decoder(tiny_model[0], tmp_path / "d.onnx", opset=17)
    assert seen["dynamo"] is False and seen["opset_version"] == 17


@pytest.mark.slow
def test_large_graphs_keep_weights_in_one_external_file(tiny_model, tmp_path):
    """vit_h's encoder is beyond protobuf's 2 GB: weights go to <graph>.data (forced here by a 0-byte threshold)."""
    from edgesam.export import onnx_export

    files = onnx_export.export_encoder(tiny_model[0], tmp_path / "encoder.onnx", threshold=0)
    assert files == ["encoder.onnx", "encoder.onnx.data"]
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # no per-tensor files or scratch left behind
    assert (tmp_path / "encoder.onnx").stat().st_size < 0.1 * (tmp_path / "encoder.onnx.data").stat().st_size
    checks.check_graph(tmp_path / "encoder.onnx")
    x = np.zeros((1, 3, 64, 64), np.float32)
    out = checks.cpu_session(tmp_path / "encoder.onnx").run(None, {"image": x})[0]
    with torch.inference_mode():
        ref = tiny_model[0].image_encoder(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, ref, atol=EXPORT_FP32_EMBED_ATOL)


def test_encoder_layer_norms_reach_the_graph_over_token_rows(fp32_bundle, tiny_model):
    """The ViT blocks' LayerNorms are exported over (B, H*W, C) (a form OpenVINO fuses into one kernel), with
    the same numbers as over (B, H, W, C), and the model's own modules are left as they were."""
    from edgesam.export.wrappers import token_norms_flattened

    out, _ = fp32_bundle
    encoder = onnx.load(str(out / "encoder.onnx"))
    norms = [n for n in encoder.graph.node if n.op_type == "LayerNormalization"]
    assert norms, "the tiny ViT exports its block norms as LayerNormalization"
    inferred = onnx.shape_inference.infer_shapes(encoder)
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in inferred.graph.value_info}
    assert all(ranks.get(n.input[0]) == 3 for n in norms), [ranks.get(n.input[0]) for n in norms]

    model = tiny_model[0]
    norm = next(m for m in model.image_encoder.modules() if isinstance(m, torch.nn.LayerNorm))
    x = torch.randn(2, 4, 4, norm.normalized_shape[0])
    expected = norm(x)
    with token_norms_flattened(model.image_encoder):
        assert torch.equal(norm(x), expected)
        assert "forward" in vars(norm)
    assert "forward" not in vars(norm)


@pytest.mark.parametrize("stride", [1, 2])
def test_refiner_graph_upsamples_like_the_refiner(stride):
    """The exported refiner draws the bilinear upsampling as a fixed convolution: same numbers as the
    module's F.interpolate, edges included."""
    from edgesam.export.wrappers import RefinerGraph, bilinear_phase_kernels
    from edgesam.models import create_model
    from edgesam.models.refiner import attach_refiner
    from edgesam_runtime.roi import RefineSpec

    torch.manual_seed(0)
    model = create_model("vit_t", image_size=64).eval()
    refiner = attach_refiner(model, RefineSpec(stride=stride, width=8))
    torch.nn.init.normal_(refiner.head.weight, std=0.1)  # a trained refiner's residual is not zero
    image, low_res = torch.randn(3, 3, 64, 64), 5 * torch.randn(3, 1, 16, 16)
    with torch.no_grad():
        want, got = refiner(image, low_res), RefinerGraph(model)(image, low_res)
        one_image = RefinerGraph(model)(image[:1], low_res)
    assert got.shape == want.shape == (3, 1, 64 // stride, 64 // stride)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(one_image, refiner(image[:1], low_res), atol=1e-5, rtol=0)
    assert torch.allclose(bilinear_phase_kernels(2).sum(dim=(1, 2, 3)), torch.ones(4))  # each phase a weighted mean
