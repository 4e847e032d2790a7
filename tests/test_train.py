"""The SR training loop: it learns, logs each loss term, resumes exactly, stops loudly on NaN."""

import math
import random
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from ocrsr_lib.checkpoints import load_checkpoint, save_checkpoint
from ocrsr_lib.models import Bicubic
from ocrsr_lib.runs.cdistnet import cdistnet_batch_loss
from ocrsr_lib.runs.guide import recognizer_batch_loss
from ocrsr_lib.train import (
    TrainConfig,
    epoch_order,
    l1_loss,
    mse_loss,
    progress_postfix,
    restore_rng_state,
    rng_state,
    split_loss,
    term_name,
    train_model,
    train_sr,
)


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
    assert result.seconds > 0 and result.images_per_second(4) > 0


def test_killed_and_resumed_run_ends_with_identical_weights(tmp_path):
    dataset = tiny_dataset()
    # 24 // 4 = 6 batches per epoch: the interruption after 8 steps falls mid-epoch
    config = TrainConfig(
        steps=16, batch_size=4, learning_rate=1e-2, checkpoint_every=3, gradient_clip=0.5
    )
    straight = TinySR()
    straight_result = train_sr(straight, dataset, mse_loss, config, tmp_path / "straight.pt")

    interrupted = TinySR()
    first = train_sr(interrupted, dataset, mse_loss, config, tmp_path / "resumed.pt", stop_after=8)
    assert len(first.losses) == 8
    torch.manual_seed(1234)  # whatever happens between the runs must not matter
    resumed = TinySR()
    second = train_sr(resumed, dataset, mse_loss, config, tmp_path / "resumed.pt")
    assert second.resumed_from == 8 and second.losses == straight_result.losses
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name


def test_a_finished_run_is_read_and_not_written_again(tmp_path):
    config = TrainConfig(steps=3, batch_size=4, learning_rate=1e-2)
    path = tmp_path / "done.pt"
    train_sr(TinySR(), tiny_dataset(), mse_loss, config, path)
    written = path.stat().st_mtime_ns
    again = train_sr(TinySR(), tiny_dataset(), mse_loss, config, path)
    assert again.resumed_from == 3 and len(again.losses) == 3
    assert path.stat().st_mtime_ns == written


class CrashInCall:
    """An L1 loss that raises in its n-th call, as a process killed mid-step would stop."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __call__(self, sr, hr, labels):
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt("killed")
        return l1_loss(sr, hr, labels)


def test_a_crash_resumes_from_the_last_periodic_checkpoint(tmp_path):
    dataset = tiny_dataset(20)  # 5 batches per epoch
    config = TrainConfig(steps=12, batch_size=4, learning_rate=1e-2, checkpoint_every=3, seed=7)
    straight = TinySR()
    expected = train_sr(straight, dataset, l1_loss, config)
    crashing = TinySR()
    with pytest.raises(KeyboardInterrupt):
        train_sr(crashing, dataset, CrashInCall(9), config, tmp_path / "c.pt")
    assert load_checkpoint(tmp_path / "c.pt")["step"] == 6
    resumed = TinySR()
    result = train_sr(resumed, dataset, l1_loss, config, tmp_path / "c.pt")
    assert result.resumed_from == 6 and result.losses == expected.losses
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name


def test_resume_refuses_other_settings_and_may_train_longer(tmp_path):
    dataset = tiny_dataset()
    config = TrainConfig(steps=4, batch_size=4, checkpoint_every=2)
    train_sr(TinySR(), dataset, mse_loss, config, tmp_path / "c.pt")
    changed = TrainConfig(steps=4, batch_size=2, learning_rate=1e-3, checkpoint_every=2)
    with pytest.raises(ValueError, match=r"c.pt: batch_size: checkpoint 4 vs now 2; learning"):
        train_sr(TinySR(), dataset, mse_loss, changed, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="training samples: checkpoint 24 vs now 20"):
        train_sr(TinySR(), dataset[:20], mse_loss, config, tmp_path / "c.pt")
    longer = train_sr(
        TinySR(), dataset, mse_loss, TrainConfig(steps=7, batch_size=4), tmp_path / "c.pt"
    )
    assert longer.resumed_from == 4 and len(longer.losses) == 7
    fresh = train_sr(TinySR(), dataset, mse_loss, config, tmp_path / "c.pt", resume=False)
    assert fresh.resumed_from == 0 and load_checkpoint(tmp_path / "c.pt")["step"] == 4


def test_rng_state_survives_a_checkpoint(tmp_path):
    np.random.randn()  # leaves a cached Gaussian in numpy's state
    random.gauss(0, 1)  # and in Python's
    save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state()})

    def draws():
        return (torch.rand(3).tolist(), np.random.randn(3).tolist(), random.gauss(0, 1))

    expected = draws()
    torch.manual_seed(5), np.random.seed(5), random.seed(5)
    restore_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert draws() == expected


def test_configuration_by_epochs_and_its_checks():
    result = train_sr(TinySR(), tiny_dataset(), l1_loss, TrainConfig(epochs=2, batch_size=5))
    assert result.steps == 8 and len(result.losses) == 8  # 24 // 5 = 4 whole batches per epoch
    with pytest.raises(ValueError, match="either steps or epochs"):
        TrainConfig(steps=3, epochs=1)
    with pytest.raises(ValueError, match="must be positive"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match=">= 0"):
        TrainConfig(steps=1, checkpoint_every=-1)


def test_test_splits_are_refused_for_validation_and_bf16_warns_on_the_cpu():
    dataset = tiny_dataset()
    with pytest.raises(ValueError, match=r"\['easy'\] look like test splits"):
        train_sr(
            TinySR(),
            dataset,
            mse_loss,
            TrainConfig(steps=1, batch_size=4),
            validation={"easy": dataset},
        )
    with pytest.warns(UserWarning, match="bf16 autocast is for CUDA"):
        result = train_sr(
            TinySR(),
            dataset,
            mse_loss,
            TrainConfig(steps=1, batch_size=4, bf16=True),
            validation=dataset[:2],
        )
    assert list(result.validations[0]) == ["step", "validation"]


def test_nan_loss_stops_training_with_the_step(tmp_path):
    calls = []

    def poisoned_in_step_3(sr, hr, labels):
        calls.append(1)
        return mse_loss(sr, hr, labels) * (float("nan") if len(calls) == 3 else 1.0)

    model = TinySR()
    config = TrainConfig(steps=5, batch_size=4, checkpoint_every=1)
    with pytest.raises(FloatingPointError, match="loss became nan in step 3 of 5.*c.pt"):
        train_sr(model, tiny_dataset(), poisoned_in_step_3, config, tmp_path / "c.pt")
    # the bad step changed nothing: the weights are those of the checkpoint after step 2
    saved = load_checkpoint(tmp_path / "c.pt")
    assert saved["step"] == 2
    assert all(torch.equal(saved["model"][k], v) for k, v in model.state_dict().items())


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

    from ocrsr_lib.distributed import shard_batches

    assert shard_batches(torch.arange(10), 4, 1, 2).tolist() == [1, 3, 5, 7]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_distributed_worker, args=(port, tmp_path / "ddp.pt"), nprocs=2)
    single = PlainSR()
    single_result = train_sr(
        single, tiny_dataset(), mse_loss, TrainConfig(steps=6, batch_size=4, learning_rate=1e-2)
    )
    checkpoint = load_checkpoint(tmp_path / "ddp.pt")
    for name, tensor in single.state_dict().items():
        assert torch.allclose(tensor, checkpoint["model"][name], atol=1e-6), name
    # the logged loss is that of the whole global batch, as in one process
    assert checkpoint["losses"] == pytest.approx(single_result.losses, rel=1e-5)
    assert checkpoint["terms"]["mse"] == pytest.approx(single_result.terms["mse"], rel=1e-5)


def test_cosine_schedule_warms_up_then_decays_to_zero():
    config = TrainConfig(steps=100, learning_rate=1e-3, schedule="cosine", warmup_steps=10)
    rates = [config.learning_rate_at(step, 100) for step in range(100)]
    assert rates[0] == pytest.approx(1e-4)
    assert rates[9] == pytest.approx(1e-3)
    assert rates[10] == pytest.approx(1e-3)
    assert rates[55] == pytest.approx(5e-4)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert rates[-1] < 1e-6
    assert TrainConfig(steps=5).learning_rate_at(3, 5) == 1e-4
    with pytest.raises(ValueError, match="unknown schedule"):
        TrainConfig(steps=5, schedule="linear")


def test_cosine_run_resumes_exactly_and_refuses_a_longer_schedule(tmp_path):
    dataset = tiny_dataset()
    config = TrainConfig(
        steps=12, batch_size=4, learning_rate=1e-2, schedule="cosine", warmup_steps=2
    )
    path = tmp_path / "run.pt"
    whole = TinySR()
    train_sr(whole, dataset, mse_loss, config)
    resumed = TinySR()
    first = train_sr(resumed, dataset, mse_loss, config, checkpoint_path=path, stop_after=5)
    second = train_sr(resumed, dataset, mse_loss, config, checkpoint_path=path)
    assert second.seconds > first.seconds > 0  # time adds up over the resumed calls
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    longer = TrainConfig(
        steps=20, batch_size=4, learning_rate=1e-2, schedule="cosine", warmup_steps=2
    )
    with pytest.raises(ValueError, match="cosine schedule ran over 12 steps, not 20"):
        train_sr(TinySR(), dataset, mse_loss, longer, checkpoint_path=path)


def test_a_scaled_configuration_keeps_the_settings_and_shrinks_the_counts():
    config = TrainConfig(
        steps=400, batch_size=16, learning_rate=1e-3, warmup_steps=20, validate_every=100
    )
    smaller = config.scaled(0.05)
    assert (smaller.steps, smaller.warmup_steps, smaller.validate_every) == (20, 1, 5)
    assert (smaller.batch_size, smaller.learning_rate) == (16, 1e-3)
    assert config.scaled(1.0) is config
    assert TrainConfig(epochs=3).scaled(0.01).epochs == 1  # never below one
    assert TrainConfig(steps=10, validate_every=0).scaled(0.5).validate_every == 0
    for fraction in (0.0, 1.5):
        with pytest.raises(ValueError, match="budget fraction"):
            config.scaled(fraction)


def pixel_terms(sr, hr, labels):
    """A loss of two named terms: the loop minimizes their sum and logs each."""
    return {"mse": mse_loss(sr, hr, labels), "l1": 0.1 * l1_loss(sr, hr, labels)}


def test_a_loss_output_splits_into_its_total_and_detached_terms():
    value = torch.tensor(2.0, requires_grad=True)
    total, terms = split_loss(value * 3, "mse")
    assert total.requires_grad and terms == {"mse": 6.0} and not terms["mse"].requires_grad
    one = value * 2
    assert split_loss({"only": one})[0] is one  # a single term is the total itself
    total, terms = split_loss({"a": value * 2, "b": value * 5})
    assert total.item() == 14.0 and list(terms) == ["a", "b"]
    total, terms = split_loss((value * 7, {"x": value * 3, "y": value * 4}))
    assert total.item() == 14.0 and terms == {"x": 6.0, "y": 8.0}
    with pytest.raises(ValueError, match="empty mapping of terms"):
        split_loss({})
    assert [term_name(loss) for loss in (mse_loss, l1_loss, pixel_terms)] == ["mse", "l1", "loss"]


def test_each_term_is_logged_per_step_under_its_name():
    dataset, config = tiny_dataset(), TrainConfig(steps=5, batch_size=4, learning_rate=1e-2)
    plain = train_sr(TinySR(), dataset, mse_loss, config)
    assert plain.terms == {"mse": plain.losses}
    assert train_sr(TinySR(), dataset, l1_loss, config).terms.keys() == {"l1"}
    two = train_sr(TinySR(), dataset, pixel_terms, config)
    assert list(two.terms) == ["mse", "l1"] and all(len(v) == 5 for v in two.terms.values())
    sums = [a + b for a, b in zip(two.terms["mse"], two.terms["l1"], strict=True)]
    assert sums == pytest.approx(two.losses, rel=1e-6)
    shown = progress_postfix(1.0, {"mse": 0.5, "l1": 0.5})
    assert shown == {"loss": "1", "mse": "0.5", "l1": "0.5"}
    assert progress_postfix(1.0, {"mse": 1.0}) == {"loss": "1"}


def test_a_batch_loss_names_its_single_term_with_an_attribute():
    def guide_like(network, batch, device):
        lr, hr, labels = batch
        return mse_loss(network(lr.to(device)), hr.to(device), labels)

    guide_like.term = "cross-entropy"
    result = train_model(TinySR(), tiny_dataset(), guide_like, TrainConfig(steps=3, batch_size=4))
    assert result.terms == {"cross-entropy": result.losses}
    assert term_name(recognizer_batch_loss()) == "cross-entropy"
    assert term_name(cdistnet_batch_loss()) == "smoothed cross-entropy"


def test_terms_survive_an_interruption_and_resume_exactly(tmp_path):
    dataset = tiny_dataset()
    config = TrainConfig(steps=10, batch_size=4, learning_rate=1e-2, checkpoint_every=3)
    straight = train_sr(TinySR(), dataset, pixel_terms, config)
    resumed = TinySR()
    first = train_sr(resumed, dataset, pixel_terms, config, tmp_path / "c.pt", stop_after=7)
    assert load_checkpoint(tmp_path / "c.pt")["terms"] == first.terms
    second = train_sr(resumed, dataset, pixel_terms, config, tmp_path / "c.pt")
    assert second.resumed_from == 7
    assert second.losses == straight.losses and second.terms == straight.terms


def test_a_checkpoint_without_terms_resumes_with_nan_for_its_steps(tmp_path):
    dataset = tiny_dataset()
    config = TrainConfig(steps=7, batch_size=4, learning_rate=1e-2)
    straight = train_sr(TinySR(), dataset, mse_loss, config)
    path = tmp_path / "old.pt"
    train_sr(TinySR(), dataset, mse_loss, replace(config, steps=4), path)
    old = load_checkpoint(path)
    del old["terms"]  # as written before terms were logged
    save_checkpoint(path, old)
    finished = train_sr(TinySR(), dataset, mse_loss, replace(config, steps=4), path)
    assert finished.resumed_from == 4 and finished.terms == {}  # nothing new to log
    result = train_sr(TinySR(), dataset, mse_loss, config, path)
    assert result.resumed_from == 4 and result.losses == straight.losses
    assert all(math.isnan(value) for value in result.terms["mse"][:4])
    assert result.terms["mse"][4:] == straight.terms["mse"][4:]
    assert load_checkpoint(path)["terms"]["mse"][4:] == straight.losses[4:]
