"""The SR training loop: it learns, resumes exactly, and stops loudly on NaN."""

import pytest
import torch
from torch import nn

from ocrsr_lib.models import Bicubic
from ocrsr_lib.train import TrainConfig, epoch_order, mse_loss, train_sr


class TinySR(nn.Module):
    """Bicubic plus a learned 3x3 correction, with dropout so RNG state matters."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.correction = nn.Conv2d(3, 3, 3, padding=1)
        self.dropout = nn.Dropout(0.2)
        self.upscale = Bicubic()

    def forward(self, x):
        up = self.upscale(x)
        return up + self.dropout(self.correction(up))


def tiny_dataset(count=24):
    generator = torch.Generator().manual_seed(3)
    hr = torch.rand(count, 3, 32, 128, generator=generator)
    lr = nn.functional.avg_pool2d(hr, 2)
    return [(lr[i], hr[i], f"w{i}") for i in range(count)]


def test_epoch_order_is_a_reproducible_permutation():
    assert torch.equal(epoch_order(10, 1, 2), epoch_order(10, 1, 2))
    assert sorted(epoch_order(10, 1, 2).tolist()) == list(range(10))
    assert not torch.equal(epoch_order(10, 1, 2), epoch_order(10, 1, 3))


def test_training_lowers_the_loss_and_validates():
    dataset = tiny_dataset()
    config = TrainConfig(steps=30, batch_size=4, learning_rate=1e-2, validate_every=15)
    result = train_sr(TinySR(), dataset, mse_loss, config, validation={"val": dataset[:4]})
    assert len(result.losses) == 30
    assert sum(result.losses[-5:]) < sum(result.losses[:5])
    assert [v["step"] for v in result.validations] == [15, 30]
    assert result.validations[-1]["val"]["images"] == 4


def test_killed_and_resumed_run_ends_with_identical_weights(tmp_path):
    dataset = tiny_dataset()
    # 24 // 4 = 6 batches per epoch: the interruption after 8 steps falls mid-epoch
    config = TrainConfig(
        steps=16, batch_size=4, learning_rate=1e-2, checkpoint_every=3, gradient_clip=0.5
    )
    straight = TinySR()
    train_sr(straight, dataset, mse_loss, config, tmp_path / "straight.pt")

    interrupted = TinySR()
    first = train_sr(interrupted, dataset, mse_loss, config, tmp_path / "resumed.pt", stop_after=8)
    assert len(first.losses) == 8
    torch.manual_seed(1234)  # whatever happens between the runs must not matter
    resumed = TinySR()
    second = train_sr(resumed, dataset, mse_loss, config, tmp_path / "resumed.pt")
    assert len(second.losses) == 16
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name


def test_nan_loss_stops_training_with_the_step():
    def poisoned(sr, hr, labels):
        return mse_loss(sr, hr, labels) * float("nan")

    with pytest.raises(FloatingPointError, match="at step 0"):
        train_sr(TinySR(), tiny_dataset(), poisoned, TrainConfig(steps=3, batch_size=4))


def test_too_small_a_dataset_is_reported():
    with pytest.raises(ValueError, match="fewer than one batch"):
        train_sr(TinySR(), tiny_dataset(3), mse_loss, TrainConfig(steps=3, batch_size=4))


class PlainSR(nn.Module):
    """TinySR without dropout, so several processes and one compute the same thing."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.correction = nn.Conv2d(3, 3, 3, padding=1)
        self.upscale = Bicubic()

    def forward(self, x):
        up = self.upscale(x)
        return up + self.correction(up)


def _distributed_worker(rank, port, checkpoint):
    import os

    import torch.distributed as dist

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2"
    )
    torch.set_num_threads(1)
    config = TrainConfig(steps=6, batch_size=4, learning_rate=1e-2)
    train_sr(PlainSR(), tiny_dataset(), mse_loss, config, checkpoint)
    dist.destroy_process_group()


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path):
    import socket

    import torch.multiprocessing as mp

    from ocrsr_lib.checkpoints import load_checkpoint
    from ocrsr_lib.distributed import shard_batches

    assert shard_batches(torch.arange(10), 4, 1, 2).tolist() == [1, 3, 5, 7]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_distributed_worker, args=(port, tmp_path / "ddp.pt"), nprocs=2)
    single = PlainSR()
    train_sr(
        single, tiny_dataset(), mse_loss, TrainConfig(steps=6, batch_size=4, learning_rate=1e-2)
    )
    weights = load_checkpoint(tmp_path / "ddp.pt")["model"]
    for name, tensor in single.state_dict().items():
        assert torch.allclose(tensor, weights[name], atol=1e-6), name
