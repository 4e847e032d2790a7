"""Several processes, one model: torchrun support (DistributedDataParallel, rank-0 I/O)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def start_if_launched(device: torch.device) -> torch.device:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); return this rank's device.

    On CUDA each process uses the GPU of its LOCAL_RANK (NCCL); on the CPU the group uses gloo.
    """
    device = local_device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 without a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """Rank 0, the one process that validates, writes checkpoints and shows progress."""
    return rank_and_world()[0] == 0


def local_device(device: torch.device) -> torch.device:
    """On CUDA under torchrun, each process uses the GPU of its LOCAL_RANK."""
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def shard_batches(order: torch.Tensor, batch_size: int, rank: int, world: int) -> torch.Tensor:
    """This rank's share of each global batch of `order` (whole batches only), in batch order.

    Rank r takes positions r, r + world, ... of every batch, as DistributedSampler would, so
    the processes together see exactly the batches that one process would.
    """
    if batch_size % world:
        raise ValueError(f"batch size {batch_size} is not divisible by {world} processes")
    batches = order[: len(order) // batch_size * batch_size].view(-1, batch_size)
    return batches[:, rank::world].reshape(-1)


def mean_across_processes(value: torch.Tensor) -> torch.Tensor:
    """The mean of `value` over all processes (`value` itself in a single process).

    Every rank then logs, and checks for NaN, the loss of the whole global batch.
    """
    world = rank_and_world()[1]
    if world == 1:
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / world


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `model` when there are several processes."""
    if rank_and_world()[1] == 1:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
