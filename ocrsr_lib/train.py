"""The training loop of every model (SR models, the guide and judge, CDistNet): a pluggable
batch loss whose named terms are logged, Adam, clipping, validation, exact resume.

The data order is a pure function of (seed, epoch), and checkpoints hold the model, optimizer,
step, history and every RNG state, so a run that is killed and resumed ends with the same
weights as one that never stopped (in one process, with the same settings and data).
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ocrsr_lib import distributed
from ocrsr_lib.checkpoints import load_checkpoint, load_state_dict_strict, save_checkpoint
from ocrsr_lib.config import seed_everything
from ocrsr_lib.data.textzoom import TEST_DIFFICULTIES
from ocrsr_lib.metrics import evaluate_sr
from ocrsr_lib.progress import progress_bar

LossTerms = Mapping[str, torch.Tensor]  # named terms of a loss, each as it enters the total
# what a loss returns: one tensor (a single term), its terms (the total is their sum, in order),
# or (total, terms) when the loss computes its total itself (the terms then add up to it only
# up to rounding)
LossOutput = torch.Tensor | LossTerms | tuple[torch.Tensor, LossTerms]
LossFunction = Callable[[torch.Tensor, torch.Tensor, Sequence[str]], LossOutput]
BatchLoss = Callable[[nn.Module, tuple, torch.device], LossOutput]  # (network, batch, device)
Validation = Callable[[nn.Module], dict]  # model -> named results, run on the main process

# settings that change the sequence of weights; a resumed run must keep them (steps may grow)
TRAJECTORY_FIELDS = (
    "batch_size",
    "learning_rate",
    "betas",
    "adam_epsilon",
    "gradient_clip",
    "seed",
    "bf16",
    "channels_last",
    "schedule",
    "warmup_steps",
)
SCHEDULES = ("constant", "cosine", "noam")


def term_name(loss: Callable) -> str:
    """The name a loss that returns one tensor is logged under: its `term` attribute, or "loss".

    An attribute rather than a one-item mapping, so that direct callers still get a tensor.
    """
    return getattr(loss, "term", "loss")


def split_loss(
    output: LossOutput, name: str = "loss"
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The total to minimize and the detached named terms to log, from any `LossOutput`."""
    if isinstance(output, torch.Tensor):
        return output, {name: output.detach()}
    if isinstance(output, tuple):
        total, terms = output
    else:
        if not output:
            raise ValueError("a loss returned an empty mapping of terms")
        total, terms = functools.reduce(operator.add, output.values()), output
    return total, {term: value.detach() for term, value in terms.items()}


def call_loss(
    loss: Callable[..., LossOutput], *arguments: object
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(total, terms) of `loss(*arguments)`, through its `total_and_terms` method if it has one.

    Such a loss (e.g. the text-focus loss) returns only its total when called, for direct callers.
    """
    with_terms = getattr(loss, "total_and_terms", None)
    if with_terms is not None:
        return split_loss(with_terms(*arguments))
    return split_loss(loss(*arguments), term_name(loss))


def mse_loss(sr: torch.Tensor, hr: torch.Tensor, labels: Sequence[str]) -> torch.Tensor:
    """Pixel MSE on RGB (a mask channel of HR is ignored)."""
    return F.mse_loss(sr[:, :3], hr[:, :3])


def l1_loss(sr: torch.Tensor, hr: torch.Tensor, labels: Sequence[str]) -> torch.Tensor:
    """Pixel L1 on RGB."""
    return F.l1_loss(sr[:, :3], hr[:, :3])


mse_loss.term = "mse"
l1_loss.term = "l1"


def steps_per_epoch(dataset_size: int, batch_size: int) -> int:
    """Whole batches in one pass over the data (the incomplete last batch is dropped)."""
    if dataset_size < batch_size:
        raise ValueError(
            f"{dataset_size} training samples are fewer than one batch of {batch_size}"
        )
    return dataset_size // batch_size


@dataclass(frozen=True)
class TrainConfig:
    """How long and how to train: `steps` or `epochs`. Betas (0.5, 0.999) are TBSRN's."""

    steps: int | None = None
    epochs: int | None = None
    batch_size: int = 16
    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    adam_epsilon: float = 1e-8  # CDistNet's official training uses 1e-9
    gradient_clip: float | None = None  # max gradient norm; None: no clipping
    validate_every: int = 0  # steps; 0: only at the end
    checkpoint_every: int = 200  # steps; 0: only at the end
    seed: int = 0
    num_workers: int = 0
    bf16: bool = False  # autocast on CUDA only
    channels_last: bool = False
    compile: bool = False  # torch.compile the network (same weights: not a trajectory field)
    # "cosine": decay to 0 over the run after the warm-up; "noam": the transformer schedule
    # learning_rate * min(n^-0.5, n * warmup^-1.5) at step n = 1, 2, ... (CDistNet's, with
    # learning_rate = width^-0.5)
    schedule: str = "constant"
    warmup_steps: int = 0  # linear warm-up from 0 to learning_rate (constant, cosine)

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {SCHEDULES}")
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give either steps or epochs")
        counts = [n for n in (self.steps, self.epochs, self.batch_size) if n is not None]
        if min(counts) < 1:
            raise ValueError(f"steps, epochs and batch_size must be positive: {self}")
        if min(self.validate_every, self.checkpoint_every, self.num_workers) < 0:
            raise ValueError(f"validate_every, checkpoint_every, num_workers are >= 0: {self}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0: {self}")

    def scaled(self, fraction: float) -> TrainConfig:
        """The same settings with `fraction` of the steps (or epochs), warm-up and intervals."""
        if not 0 < fraction <= 1:
            raise ValueError(f"a training budget fraction is in (0, 1], got {fraction}")
        if fraction == 1:
            return self

        def shrink(count: int | None) -> int | None:
            return None if count is None else max(1, round(count * fraction))

        return replace(
            self,
            steps=shrink(self.steps),
            epochs=shrink(self.epochs),
            warmup_steps=round(self.warmup_steps * fraction),
            validate_every=shrink(self.validate_every) if self.validate_every else 0,
            checkpoint_every=shrink(self.checkpoint_every) if self.checkpoint_every else 0,
        )

    def learning_rate_at(self, step: int, total: int) -> float:
        """The learning rate of (0-based) `step` in a run of `total` steps."""
        if self.schedule == "noam":
            n = step + 1
            return self.learning_rate * min(n**-0.5, n * max(self.warmup_steps, 1) ** -1.5)
        if step < self.warmup_steps:
            return self.learning_rate * (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return self.learning_rate
        progress = (step - self.warmup_steps) / max(1, total - self.warmup_steps)
        return self.learning_rate * 0.5 * (1 + math.cos(math.pi * progress))

    def total_steps(self, dataset_size: int) -> int:
        """The number of optimizer steps of the whole run."""
        per_epoch = steps_per_epoch(dataset_size, self.batch_size)
        return self.steps if self.steps is not None else self.epochs * per_epoch


@dataclass
class TrainResult:
    """The run's history: loss and its named terms per step (global batch), validation reports."""

    steps: int
    resumed_from: int = 0  # the step this call started at (0 for a fresh run)
    losses: list[float] = field(default_factory=list)
    # each term's value per step, as long as `losses`; NaN where a step did not report it (e.g.
    # the steps of a checkpoint written before terms were logged)
    terms: dict[str, list[float]] = field(default_factory=dict)
    validations: list[dict] = field(default_factory=list)
    seconds: float = 0.0  # wall-clock time of the training steps, summed over resumed calls
    device: str = ""  # where the last training step ran ("" in checkpoints older than this)

    def images_per_second(self, batch_size: int) -> float:
        """Training throughput over the steps done so far (global batch)."""
        return len(self.losses) * batch_size / self.seconds if self.seconds else float("nan")


def epoch_order(length: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch, reproducible from (seed, epoch) alone."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(length, generator=generator)


def batches_from(
    dataset: Dataset, config: TrainConfig, start_step: int, pin_memory: bool = False
) -> Iterator[tuple[int, tuple]]:
    """Yield (step, batch) from `start_step` to the end of the run, epoch after epoch.

    The order depends only on (seed, step), so a resumed run continues mid-epoch with the
    batches an uninterrupted run would see. With several processes each gets its share.
    """
    per_epoch = steps_per_epoch(len(dataset), config.batch_size)
    total = config.total_steps(len(dataset))
    rank, world = distributed.rank_and_world()
    step = start_step
    while step < total:
        epoch, position = divmod(step, per_epoch)
        order = epoch_order(len(dataset), config.seed, epoch)[position * config.batch_size :]
        mine = distributed.shard_batches(order, config.batch_size, rank, world)
        # its own generator: a loader would otherwise draw from the global RNG when it starts
        worker_seeds = torch.Generator().manual_seed(config.seed + epoch)
        loader = DataLoader(
            Subset(dataset, mine.tolist()),
            batch_size=config.batch_size // world,
            num_workers=config.num_workers,
            generator=worker_seeds,
            pin_memory=pin_memory,
        )
        for batch in loader:
            yield step, batch
            step += 1
            if step >= total:
                return


def rng_state() -> dict:
    """Every global random generator's state as tensors and numbers (safe to checkpoint)."""
    _, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
    }


def restore_rng_state(state: dict) -> None:
    """Put back what `rng_state` captured (CUDA states only on a machine with as many GPUs)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    keys = numpy_state["keys"].numpy().astype(np.uint32)
    np.random.set_state(
        ("MT19937", keys, numpy_state["position"], numpy_state["has_gauss"], numpy_state["gauss"])
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"].tolist()), python["gauss_next"]))


def save_training_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    result: TrainResult,
    config: TrainConfig,
    dataset_size: int,
) -> None:
    """Checkpoint everything a bit-exact resume needs, atomically."""
    step = len(result.losses)
    per_epoch = steps_per_epoch(dataset_size, config.batch_size)
    save_checkpoint(
        path,
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "total_steps": result.steps,
            "losses": result.losses,
            "terms": result.terms,
            "validations": result.validations,
            "seconds": result.seconds,
            "device": result.device,
            "config": asdict(config),
            "rng": rng_state(),
            "data_order": {
                "dataset_size": dataset_size,
                "seed": config.seed,
                "epoch": step // per_epoch,
                "position": step % per_epoch,
            },
        },
    )


def check_resumable(checkpoint: dict, config: TrainConfig, dataset_size: int, path: Path) -> None:
    """Refuse to resume a run whose settings or data differ from the checkpoint's."""
    saved = checkpoint["config"]
    defaults = {name: getattr(TrainConfig(steps=1), name) for name in TRAJECTORY_FIELDS}
    differences = [
        f"{name}: checkpoint {saved.get(name, defaults[name])!r} vs now {getattr(config, name)!r}"
        for name in TRAJECTORY_FIELDS
        if saved.get(name, defaults[name]) != getattr(config, name)
    ]
    saved_size = checkpoint["data_order"]["dataset_size"]
    if saved_size != dataset_size:
        differences.append(f"training samples: checkpoint {saved_size} vs now {dataset_size}")
    total = config.total_steps(dataset_size)
    if checkpoint["step"] > total:
        differences.append(f"checkpoint is at step {checkpoint['step']}, this run has {total}")
    saved_total = checkpoint.get("total_steps", total)
    if config.schedule != "constant" and saved_total != total:
        differences.append(
            f"the {config.schedule} schedule ran over {saved_total} steps, not {total}"
        )
    if differences:
        raise ValueError(
            f"cannot resume from {path}: " + "; ".join(differences) + " (pass resume=False "
            "or another checkpoint path to start afresh)"
        )


def resume_training_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    dataset_size: int,
) -> TrainResult:
    """Load model, optimizer, history and RNG state from `path`; the history says the step."""
    checkpoint = load_checkpoint(path)
    check_resumable(checkpoint, config, dataset_size, path)
    load_state_dict_strict(model, checkpoint["model"], f"checkpoint {path}")
    optimizer.load_state_dict(checkpoint["optimizer"])
    restore_rng_state(checkpoint["rng"])
    return TrainResult(
        steps=config.total_steps(dataset_size),
        resumed_from=checkpoint["step"],
        losses=list(checkpoint["losses"]),
        terms={name: list(values) for name, values in checkpoint.get("terms", {}).items()},
        validations=list(checkpoint["validations"]),
        seconds=float(checkpoint.get("seconds", 0.0)),
        device=str(checkpoint.get("device", "")),
    )


def validation_splits(validation: Dataset | Mapping[str, Dataset] | None) -> dict[str, Dataset]:
    """Validation data as named splits; a bare dataset is named `validation`.

    TextZoom's test splits (and any split named like a test split) are refused: choosing a
    model on them would leak the test set into training.
    """
    if validation is None:
        return {}
    splits = dict(validation) if isinstance(validation, Mapping) else {"validation": validation}
    test_like = [n for n in splits if n in TEST_DIFFICULTIES or "test" in n.lower()]
    if test_like:
        raise ValueError(
            f"validation splits {test_like} look like test splits; validate on held-out "
            "training data"
        )
    return splits


def autocast_context(
    config: TrainConfig, device: torch.device
) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked for; elsewhere float32, with a warning if it was asked."""
    if not config.bf16:
        return contextlib.nullcontext()
    if device.type != "cuda":
        warnings.warn(f"bf16 autocast is for CUDA; training in float32 on {device}", stacklevel=3)
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16)


def sr_batch_loss(loss_fn: LossFunction, channels_last: bool = False) -> BatchLoss:
    """The batch loss of SR training: loss_fn(network(lr), hr, labels)."""

    def batch_loss(
        network: nn.Module, batch: tuple, device: torch.device
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        lr, hr, labels = batch
        lr, hr = lr.to(device, non_blocking=True), hr.to(device, non_blocking=True)
        if channels_last:
            lr = lr.contiguous(memory_format=torch.channels_last)
        return call_loss(loss_fn, network(lr).float(), hr, labels)

    return batch_loss


def train_step(
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: tuple,
    batch_loss: BatchLoss,
    config: TrainConfig,
    device: torch.device,
    autocast: contextlib.AbstractContextManager,
) -> tuple[float, dict[str, float]]:
    """One optimizer step on one batch; the global batch's loss and its terms (NaN unchecked)."""
    with autocast:
        loss, terms = call_loss(batch_loss, network, batch, device)
    value, term_values = global_means(loss, terms)
    if not np.isfinite(value):
        return value, term_values
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.gradient_clip:
        nn.utils.clip_grad_norm_(network.parameters(), config.gradient_clip)
    optimizer.step()
    return value, term_values


def global_means(
    loss: torch.Tensor, terms: Mapping[str, torch.Tensor]
) -> tuple[float, dict[str, float]]:
    """The loss and terms averaged over the processes' batches, in one reduction and one sync."""
    values = torch.stack([loss.detach().reshape(()), *(t.reshape(()) for t in terms.values())])
    total, *term_values = distributed.mean_across_processes(values).tolist()
    return total, dict(zip(terms, term_values, strict=True))


def record_step(result: TrainResult, loss: float, terms: Mapping[str, float]) -> None:
    """Append one step's loss and terms; NaN fills a term's steps before it first appears and
    any step without it, so every term's list lines up with `losses`."""
    for name in terms:
        result.terms.setdefault(name, [math.nan] * len(result.losses))
    for name, values in result.terms.items():
        values.append(terms.get(name, math.nan))
    result.losses.append(loss)


def progress_postfix(loss: float, terms: Mapping[str, float]) -> dict[str, str]:
    """What the progress bar shows: the loss, and each term when there are several."""
    shown = {"loss": loss, **terms} if len(terms) > 1 else {"loss": loss}
    return {name: f"{value:.4g}" for name, value in shown.items()}


def is_due(step: int, every: int) -> bool:
    """Whether a periodic action (every `every` steps; 0: never) falls after `step` steps."""
    return every > 0 and step % every == 0


def validate_into(result: TrainResult, model: nn.Module, validate: Validation | None) -> None:
    """Append an evaluation after the steps done so far to the history (once per step)."""
    step = len(result.losses)
    if validate and not any(entry["step"] == step for entry in result.validations):
        result.validations.append({"step": step, **validate(model)})


def start_or_resume(
    checkpoint_path: Path | None,
    resume: bool,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    dataset_size: int,
) -> TrainResult:
    """The state at `checkpoint_path` when resuming and it exists, else a fresh seeded run."""
    if checkpoint_path and resume and checkpoint_path.is_file():
        return resume_training_state(checkpoint_path, model, optimizer, config, dataset_size)
    seed_everything(config.seed)
    return TrainResult(steps=config.total_steps(dataset_size))


def check_finite(loss: float, step: int, result: TrainResult, checkpoint_path: Path | None) -> None:
    """Stop on a NaN or infinite loss, naming the (1-based) step and the last checkpoint."""
    if not np.isfinite(loss):
        saved = f"; the last checkpoint is {checkpoint_path}" if checkpoint_path else ""
        raise FloatingPointError(
            f"training loss became {loss} in step {step + 1} of {result.steps}{saved}"
        )


def train_sr(
    model: nn.Module,
    train_dataset: Dataset,
    loss_fn: LossFunction,
    config: TrainConfig,
    checkpoint_path: str | os.PathLike | None = None,
    validation: Dataset | Mapping[str, Dataset] | None = None,
    device: torch.device | str = "cpu",
    resume: bool = True,
    stop_after: int | None = None,
) -> TrainResult:
    """Train `model` (LR -> SR); with `resume`, continue from `checkpoint_path` if it exists.

    `validation` holds validation data, never test splits. `stop_after` ends this call after
    that many steps (with a checkpoint), as an interruption would. Under torchrun the global
    batch is split over the processes; only rank 0 validates, writes and shows progress.
    """
    splits = validation_splits(validation)

    def validate(trained: nn.Module) -> dict:
        return evaluate_sr(trained, splits, next(trained.parameters()).device)

    return train_model(
        model,
        train_dataset,
        sr_batch_loss(loss_fn, config.channels_last),
        config,
        checkpoint_path,
        validate if splits else None,
        device,
        resume,
        stop_after,
    )


def train_model(
    model: nn.Module,
    train_dataset: Dataset,
    batch_loss: BatchLoss,
    config: TrainConfig,
    checkpoint_path: str | os.PathLike | None = None,
    validate: Validation | None = None,
    device: torch.device | str = "cpu",
    resume: bool = True,
    stop_after: int | None = None,
) -> TrainResult:
    """The loop behind `train_sr`, for any model: `batch_loss(network, batch, device)`.

    Same schedule, clipping, checkpoints, exact resume, NaN check and torchrun support;
    `validate(model)` (main process only) returns what goes into the history.
    """
    device = distributed.start_if_launched(torch.device(device))
    main_process = distributed.is_main_process()
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(
        parameters, lr=config.learning_rate, betas=config.betas, eps=config.adam_epsilon
    )
    checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
    size = len(train_dataset)
    result = start_or_resume(checkpoint_path, resume, model, optimizer, config, size)

    def checkpoint() -> None:
        if main_process and checkpoint_path:
            save_training_state(checkpoint_path, model, optimizer, result, config, size)

    autocast = autocast_context(config, device)
    network = distributed.wrap(model, device)
    if config.compile:
        network = torch.compile(network)
    model.train()
    batches = batches_from(train_dataset, config, result.resumed_from, device.type == "cuda")
    with progress_bar(
        total=result.steps,
        initial=result.resumed_from,
        desc="training",
        leave=False,
        disable=not main_process,
    ) as progress:
        started = time.perf_counter()
        for step, batch in batches:
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate_at(step, result.steps)
            loss, terms = train_step(
                network, optimizer, batch, batch_loss, config, device, autocast
            )
            result.seconds += time.perf_counter() - started
            check_finite(loss, step, result, checkpoint_path)
            record_step(result, loss, terms)
            result.device = str(device)
            progress.update(1)
            progress.set_postfix(progress_postfix(loss, terms), refresh=False)
            if main_process and is_due(step + 1, config.validate_every):
                validate_into(result, model, validate)
            if is_due(step + 1, config.checkpoint_every):
                checkpoint()
            started = time.perf_counter()
            if stop_after is not None and step + 1 - result.resumed_from >= stop_after:
                break
    validations_before = len(result.validations)
    if main_process and len(result.losses) == result.steps:
        validate_into(result, model, validate)
    if len(result.losses) > result.resumed_from or len(result.validations) > validations_before:
        checkpoint()  # a finished run read from the cache is not written again
    model.eval()
    return result
