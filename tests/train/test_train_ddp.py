"""finetune under DistributedDataParallel: 2 CPU processes with the gloo backend (as torchrun sets up)."""
import json
import os
import socket

import pytest
import torch.multiprocessing as mp

from tests.train.conftest import tiny_config


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, data, out):
    import torch

    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from edgesam.train import finetune

    finetune(tiny_config(data, out, strategy="lora", batch_size=1, max_steps=2, val_max_images=1, device="cpu"),
             progress=False)
    torch.distributed.destroy_process_group()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("EDGESAM_TEST_DDP") != "1",
                    reason="~45 s on the shared 2-core box (two spawned interpreters); set EDGESAM_TEST_DDP=1")
def test_ddp_two_cpu_processes(tiny_data, tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tiny_data), str(tmp_path)), nprocs=2, join=True)
    lines = [json.loads(x) for x in (tmp_path / "status.jsonl").read_text().splitlines()]
    setup = next(x for x in lines if x["state"] == "setup")
    assert setup["figures"]["world"] == 2
    steps = [x for x in lines if x["state"] == "step"]
    assert len(steps) == 2  # only rank 0 records
    assert (tmp_path / "adapter/adapter_model.safetensors").exists()


def test_epoch_order_shards_cover_the_epoch_once():
    from edgesam.train.loop import epoch_order

    shards = [epoch_order(10, seed=3, epoch=1, rank=r, world=3) for r in range(3)]
    assert all(len(s) == 4 for s in shards)  # padded to equal length so ranks step together
    assert set(sum(shards, [])) == set(range(10))
    assert epoch_order(10, 3, 1) != epoch_order(10, 3, 2)  # reshuffled per epoch, reproducibly
    assert epoch_order(10, 3, 1) == epoch_order(10, 3, 1)
