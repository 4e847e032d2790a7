"""Training loop for SR models: pluggable loss, Adam, clipping, validation, exact resume.

The data order is a pure function of (seed, epoch), and checkpoints hold the model, optimizer,
step, history and RNG state, so a run that is killed and resumed ends with the same weights as
one that never stopped (on the CPU, with the same settings).
"""

from __future__ import annotations

import ast
import contextlib
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from ocrsr_lib import distributed
from ocrsr_lib.checkpoints import load_checkpoint, save_checkpoint
from ocrsr_lib.metrics import evaluate_sr

LossFunction = Callable[[torch.Tensor, torch.Tensor, Sequence[str]], torch.Tensor]


def mse_loss(sr: torch.Tensor, hr: torch.Tensor, labels: Sequence[str]) -> torch.Tensor:
    """Pixel MSE on RGB (a mask channel of HR is ignored)."""
    return F.mse_loss(sr[:, :3], hr[:, :3])


def l1_loss(sr: torch.Tensor, hr: torch.Tensor, labels: Sequence[str]) -> torch.Tensor:
    """Pixel L1 on RGB."""
    return F.l1_loss(sr[:, :3], hr[:, :3])


@dataclass(frozen=True)
class TrainConfig:
    """How long and how to train. Betas (0.5, 0.999) and lr 1e-4 are TBSRN's settings."""

    steps: int
    batch_size: int = 16
    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    gradient_clip: float | None = None
    validate_every: int = 0  # 0: only at the end
    checkpoint_every: int = 200
    seed: int = 0
    num_workers: int = 0
    bf16: bool = False  # autocast on CUDA only
    channels_last: bool = False


@dataclass
class TrainResult:
    """The trained model's history: loss per step and validation reports."""

    steps: int
    losses: list[float] = field(default_factory=list)
    validations: list[dict] = field(default_factory=list)


def epoch_order(length: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch, reproducible from (seed, epoch) alone."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(length, generator=generator)


def batches_from(dataset: Dataset, config: TrainConfig, start_step: int):
    """Yield (step, batch) from `start_step` on, epoch after epoch, dropping incomplete batches.

    With several processes each one gets its share of every global batch.
    """
    per_epoch = len(dataset) // config.batch_size
    if per_epoch == 0:
        raise ValueError(
            f"{len(dataset)} training samples are fewer than one batch of {config.batch_size}"
        )
    rank, world = distributed.rank_and_world()
    step = start_step
    while step < config.steps:
        epoch, position = divmod(step, per_epoch)
        order = epoch_order(len(dataset), config.seed, epoch)[position * config.batch_size :]
        mine = distributed.shard_batches(order, config.batch_size, rank, world)
        # its own generator: a loader would otherwise draw from the global RNG when it starts
        seeds = torch.Generator().manual_seed(config.seed + epoch)
        loader = DataLoader(
            Subset(dataset, mine.tolist()),
            batch_size=config.batch_size // world,
            num_workers=config.num_workers,
            generator=seeds,
        )
        for batch in loader:
            yield step, batch
            step += 1
            if step >= config.steps:
                return


def _rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "python": repr(random.getstate()),
    }


def _restore_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), 624, 0, 0.0))
    random.setstate(ast.literal_eval(state["python"]))


def _save(path: Path, model: nn.Module, optimizer, step: int, result: TrainResult, config) -> None:
    save_checkpoint(
        path,
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "losses": result.losses,
            "validations": result.validations,
            "config": asdict(config),
            "rng": _rng_state(),
        },
    )


def _resume(path: Path, model: nn.Module, optimizer, result: TrainResult) -> int:
    checkpoint = load_checkpoint(path)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    result.losses = list(checkpoint["losses"])
    result.validations = list(checkpoint["validations"])
    _restore_rng_state(checkpoint["rng"])
    return int(checkpoint["step"])


def train_sr(
    model: nn.Module,
    train_dataset: Dataset,
    loss_fn: LossFunction,
    config: TrainConfig,
    checkpoint_path: str | os.PathLike | None = None,
    validation: dict[str, Dataset] | None = None,
    device: torch.device | str = "cpu",
    resume: bool = True,
    stop_after: int | None = None,
) -> TrainResult:
    """Train `model` (LR -> SR) for `config.steps` steps; resume from `checkpoint_path` if present.

    `validation` holds validation splits, never test splits. `stop_after` ends this call after
    that many steps (with a checkpoint), as an interruption would. Under torchrun the global
    batch is split over the processes; only rank 0 validates, writes and shows progress.
    """
    device = distributed.local_device(torch.device(device))
    distributed.start_if_launched(device)
    main_process = distributed.is_main_process()
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(parameters, lr=config.learning_rate, betas=config.betas)
    result = TrainResult(steps=config.steps)
    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    start = 0
    if checkpoint_path and resume and checkpoint_path.is_file():
        start = _resume(checkpoint_path, model, optimizer, result)
    else:
        torch.manual_seed(config.seed)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if config.bf16 and device.type == "cuda"
        else contextlib.nullcontext()
    )
    network = distributed.wrap(model, device)
    model.train()
    last = start
    progress = tqdm(
        total=config.steps, initial=start, desc="training", leave=False, disable=not main_process
    )
    for step, (lr, hr, labels) in batches_from(train_dataset, config, start):
        lr, hr = lr.to(device), hr.to(device)
        if config.channels_last:
            lr = lr.contiguous(memory_format=torch.channels_last)
        with autocast:
            loss = loss_fn(network(lr).float(), hr, labels)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.gradient_clip:
            nn.utils.clip_grad_norm_(parameters, config.gradient_clip)
        optimizer.step()
        result.losses.append(loss.item())
        last = step + 1
        progress.update(1)
        if (
            main_process
            and validation
            and config.validate_every
            and last % config.validate_every == 0
        ):
            result.validations.append({"step": last, **evaluate_sr(model, validation, device)})
            model.train()
        if main_process and checkpoint_path and last % config.checkpoint_every == 0:
            _save(checkpoint_path, model, optimizer, last, result, config)
        if stop_after is not None and last - start >= stop_after:
            break
    progress.close()
    if (
        validation
        and last == config.steps
        and not any(v["step"] == last for v in result.validations)
    ):
        result.validations.append({"step": last, **evaluate_sr(model, validation, device)})
    if checkpoint_path:
        _save(checkpoint_path, model, optimizer, last, result, config)
    model.eval()
    return result
