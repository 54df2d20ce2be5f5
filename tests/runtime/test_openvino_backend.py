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
    assert seg.backend.encoder._created <= MAX_REQUESTS
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

