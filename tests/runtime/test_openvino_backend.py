"""OpenVINO-specific runtime behaviour: the compiled-model cache, precision reporting, request pool."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("openvino")


def test_cold_start_loads_the_compiled_model_from_the_cache(bundle_dir, tmp_path, monkeypatch):
    from edgesam_runtime import Segmenter

    monkeypatch.setenv("EDGESAM_OPENVINO_CACHE", str(tmp_path / "cache"))
    first = Segmenter.open(bundle_dir, backend="openvino", warmup=False)
    assert not first.backend.loaded_from_cache
    assert any((tmp_path / "cache").iterdir())
    second = Segmenter.open(bundle_dir, backend="openvino", warmup=False)
    assert second.backend.loaded_from_cache
    monkeypatch.setenv("EDGESAM_OPENVINO_CACHE", "off")
    assert not Segmenter.open(bundle_dir, backend="openvino", warmup=False).backend.loaded_from_cache


def test_fp32_runs_in_fp32_and_says_so(bundle_dir):
    from edgesam_runtime import Segmenter

    seg = Segmenter.open(bundle_dir, backend="openvino", warmup=False)
    assert seg.backend.execution_precision == {"encoder": "fp32", "decoder": "fp32"}
    assert "OpenVINO" in seg.providers[0]


def test_the_request_pool_is_bounded_and_reused(bundle_dir, make_image):
    from edgesam_runtime import Segmenter
    from edgesam_runtime.backends.ov import MAX_REQUESTS

    seg = Segmenter.open(bundle_dir, backend="openvino", threads=1)
    images = [make_image(seed=s) for s in range(12)]
    with ThreadPoolExecutor(max_workers=2 * MAX_REQUESTS) as pool:
        embeddings = list(pool.map(seg.encode, images))
    assert seg.backend.encoder._dynamic._created <= MAX_REQUESTS
    again = seg.encode(images[3])
    np.testing.assert_array_equal(again.features, embeddings[3].features)


def test_throughput_hint_runs_streams_with_the_latency_answers(bundle_dir, make_image):
    """Several cameras: OpenVINO's streams and a pool of its optimal request count; same embeddings."""
    from edgesam_runtime import InvalidInputError, Segmenter

    latency = Segmenter.open(bundle_dir, backend="openvino", threads=2, warmup=False)
    throughput = Segmenter.open(bundle_dir, backend="openvino", threads=2, warmup=False, performance="throughput")
    assert latency.backend.encoder.streams == 1 and "latency hint" in latency.providers[0]
    assert throughput.backend.encoder.max_requests >= throughput.backend.encoder.streams >= 1
    assert "throughput hint" in throughput.providers[0]
    images = [make_image(seed=s) for s in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(throughput.encode, images))
    for image, embedding in zip(images, got):
        np.testing.assert_allclose(embedding.features, latency.encode(image).features, atol=1e-4, rtol=0)
    with pytest.raises(InvalidInputError, match="performance: expected one of"):
        Segmenter.open(bundle_dir, backend="openvino", warmup=False, performance="fast")




def _decoder_feeds(count: int, points: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"image_embeddings": rng.standard_normal((1, 256, 4, 4)).astype(np.float32),
            "point_coords": rng.uniform(0, 64, (count, points, 2)).astype(np.float32),
            "point_labels": np.tile(np.array([2, 3] + [-1] * (points - 2), np.float32), (count, 1)),
            "mask_input": np.zeros((count, 1, 16, 16), np.float32), "has_mask_input": np.zeros(1, np.float32)}


def test_each_call_shape_gets_a_static_copy_with_the_dynamic_answers(bundle_dir):
    """OpenVINO runs dynamic axes well below static speed, so a new prompt count compiles a static copy
    of the decoder at its first call; its answers are the dynamic compilation's, and the same every time."""
    from edgesam_runtime.backends.ov import OvGraph

    graph = OvGraph(bundle_dir / "decoder.onnx", "fp32", threads=1, use_cache=False)
    assert graph.static_shapes > 0
    first = {count: graph.run(_decoder_feeds(count, seed=count)) for count in (1, 3)}
    assert sorted(key[1][0] for key in graph._static) == [1, 3]  # point_coords' prompt sets
    assert all(copy is not None for copy in graph._static.values())
    for count in (1, 3):
        feeds = _decoder_feeds(count, seed=count)
        assert graph._for_shapes(feeds) is graph._static[tuple(np.shape(feeds[n]) for n in graph.inputs)]
        got, want = graph.run(feeds), graph._dynamic.infer(feeds)
        for name, reference in zip(graph.output_names, want):
            np.testing.assert_allclose(got[name], reference, atol=1e-4, rtol=0)
            np.testing.assert_array_equal(got[name], first[count][name])  # one compilation per shape


def test_static_copies_are_bounded_and_a_feed_of_another_shape_is_refused(bundle_dir):
    from edgesam_runtime.backends.ov import OvGraph
    from edgesam_runtime.errors import BackendError

    graph = OvGraph(bundle_dir / "decoder.onnx", "fp32", threads=1, use_cache=False, static_shapes=1)
    graph.run(_decoder_feeds(1))
    beyond = _decoder_feeds(2)
    np.testing.assert_allclose(graph.run(beyond)["low_res_masks"], graph._dynamic.infer(beyond)[0], atol=1e-4, rtol=0)
    assert len(graph._static) == 1  # the second shape ran on the dynamic compilation
    wide = OvGraph(bundle_dir / "decoder.onnx", "fp32", threads=1, use_cache=False)
    for bad in (np.zeros((1, 3, 5), np.float32), np.zeros((1, 3), np.float32)):  # OpenVINO answers both empty
        with pytest.raises(BackendError, match=r"decoder.onnx: input 'point_coords' of shape .*the graph takes \?x\?x2"):
            wide.run({**_decoder_feeds(1), "point_coords": bad})
    assert not wide._static
    assert wide.run(_decoder_feeds(1))["low_res_masks"].shape[0] == 1  # still usable


def test_static_shapes_is_asked_at_open(bundle_dir, make_image):
    from edgesam_runtime import InvalidInputError, Segmenter

    for static_shapes, copies in ((0, 0), (2, 2)):  # the warm-up's one box, then two boxes
        seg = Segmenter.open(bundle_dir, backend="openvino", threads=1, static_shapes=static_shapes)
        assert f"static copies per graph: {static_shapes or 'none'}" in seg.providers[0]  # what bench headers show
        seg.segment(seg.encode(make_image()), boxes=[[4, 4, 40, 30], [10, 12, 50, 60]])
        decoder = seg.backend.decoder
        assert decoder.static_shapes == static_shapes and len(decoder._static) == copies
        assert None not in decoder._static.values()
    for bad in (-1, 1.5, "8", True):
        with pytest.raises(InvalidInputError, match="static_shapes: expected a non-negative integer"):
            Segmenter.open(bundle_dir, backend="openvino", warmup=False, static_shapes=bad)


def test_the_whole_image_encoder_is_static_already(bundle_dir):
    from edgesam_runtime import Segmenter

    seg = Segmenter.open(bundle_dir, backend="openvino", threads=1, warmup=False)
    assert seg.backend.encoder.static_shapes == 0 and seg.backend.encoder.model is None
