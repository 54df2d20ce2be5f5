"""bench warms each prompt count of its plan once before timing, so a per-shape compile is not timed."""
from __future__ import annotations

from types import SimpleNamespace

from edgesam.bench.format_run import warm_prompt_counts


class Recorder:
    """A predictor that records which image and prompt count each call saw."""

    def __init__(self):
        self.calls = []

    def encode(self, image):
        return image, {}

    def segment(self, handle, item):
        self.calls.append((handle, item.num_prompts))
        return [], {}


def test_one_call_on_the_first_image_of_each_prompt_count():
    counts = [1, 3, 1, 2, 3, 2, 1]
    items = [SimpleNamespace(index=i, num_prompts=n) for i, n in enumerate(counts)]
    dataset = SimpleNamespace(load=lambda index: SimpleNamespace(image=f"image{index}"))
    predictor = Recorder()
    assert warm_prompt_counts(predictor, SimpleNamespace(items=items, dataset=dataset)) == [1, 2, 3]
    assert predictor.calls == [("image0", 1), ("image1", 3), ("image3", 2)]
