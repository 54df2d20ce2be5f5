"""Tiny fixtures for the training tests: vit_t at 64 px, a synthetic per-class dataset."""
from __future__ import annotations

import pytest
import torch

from edgesam.data import synthesize_dataset


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("data"), count=8, seed=0, size=64)


@pytest.fixture(autouse=True)
def _one_thread():
    # the CI box has 2 shared cores: one thread avoids oversubscription spin and keeps runs reproducible
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny_config(data, out, **kw):
    from edgesam.train import FinetuneConfig

    # recipe sam: these tests exercise the strategies, prompts and bookkeeping on a tiny random model;
    # the from-scratch recipe (ROI crops, dense box) and the refiner (which `refine: auto` adds on these
    # thin synthetic defects) have their own tests
    base = dict(model="vit_t", init="random", recipe="sam", image_size=64, data=str(data), out=str(out), epochs=1,
                batch_size=4,
                objects_per_image=2, warmup_steps=1, val_max_images=2, lr_encoder=1e-3, lr_adapter=1e-3,
                lr_decoder=1e-3, refine="off")
    base.update(kw)
    return FinetuneConfig(**base)
