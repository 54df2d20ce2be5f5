"""Four threads calling `segment` at once get exactly the serial answers."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np



def test_concurrent_segment_equals_serial(segmenter, make_image):
    embeddings = [segmenter.encode(make_image(seed=s)) for s in range(2)]
    rng = np.random.default_rng(0)
    calls = []
    for i in range(16):
        x0, y0 = rng.uniform(0, 60, 2)
        boxes = [[x0, y0, x0 + rng.uniform(10, 70), y0 + rng.uniform(5, 25)]] * (1 + i % 3)
        calls.append((embeddings[i % 2], boxes, bool(i % 2)))

    def run(call):
        emb, boxes, multimask = call
        return segmenter.segment(emb, boxes=boxes, multimask=multimask)

    serial = [run(c) for c in calls]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(run, calls))
    for a, b in zip(serial, concurrent):
        np.testing.assert_array_equal(a.masks, b.masks)
        np.testing.assert_array_equal(a.low_res_logits, b.low_res_logits)
        np.testing.assert_array_equal(a.scores, b.scores)
