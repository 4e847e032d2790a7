"""What each training stage costs at the paper's scale: images to process, parameters, memory
(counted on a small batch and scaled to the recipe's), FLOPs per image, and the time implied by
a recorded GPU throughput. The appendix "Running at paper scale" prints these."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ocrsr_lib.config import Session
from ocrsr_lib.flops import flops_per_image
from ocrsr_lib.losses import TextFocusLoss
from ocrsr_lib.memory import TrainingMemory, training_memory
from ocrsr_lib.models import create_model, parameter_count
from ocrsr_lib.models.cdistnet import read_words
from ocrsr_lib.runs import recipe_for
from ocrsr_lib.runs.cdistnet import cdistnet_batch_loss
from ocrsr_lib.runs.data import VALIDATION_PAIRS
from ocrsr_lib.runs.guide import recognizer_batch_loss
from ocrsr_lib.runs.sr import LOSSES
from ocrsr_lib.train import TrainConfig

SCENE_TEXT_WORDS = 1_000_000  # CDistNet pretraining is priced per million scene-text words
WORDS = ("street", "coffee", "open", "24", "exit", "bakery", "no", "parking")


@dataclass(frozen=True)
class Stage:
    """One training stage: what it trains, its recipe, and the recorded benchmark row whose
    throughput (fp32, batch 32, on the recorded GPU) prices it; None: not recorded."""

    title: str
    kind: str  # "sr", "recognizer" or "cdistnet"
    recipe: str
    rate_row: str | None


STAGES = (
    Stage(
        "EDSR on natural images",
        "sr",
        "edsr-natural",
        "SR training (MSE), STN+EDSR paper, batch 32",
    ),
    Stage("guiding recognizer", "recognizer", "guide", None),
    Stage(
        "STN + EDSR, text-focus loss",
        "sr",
        "stn-edsr-text-focus",
        "SR training (text-focus, paper guide), STN+EDSR paper, batch 32",
    ),
    Stage("TBSRN, text-focus loss", "sr", "tbsrn-text-focus", None),
    Stage(
        "CDistNet pretraining (per million words)",
        "cdistnet",
        "pretrain",
        "CDistNet training, paper, batch 32",
    ),
    Stage(
        "CDistNet fine-tune (each of four)",
        "cdistnet",
        "finetune-stn-edsr-text-focus",
        "CDistNet training, paper, batch 32",
    ),
)


def stage_config(session: Session, stage: Stage) -> TrainConfig:
    """The stage's training settings in the session's (paper) profile."""
    return recipe_for(session, stage.recipe).train


def training_pairs(session: Session, stage: Stage) -> int:
    """Training samples per epoch: natural pairs, TextZoom's train split less the held-out
    validation pairs, or SCENE_TEXT_WORDS for pretraining on scene text."""
    if stage.kind == "sr" and recipe_for(session, stage.recipe).data == "natural":
        return recipe_for(session, stage.recipe).natural_pairs
    if stage.kind == "cdistnet" and recipe_for(session, stage.recipe).data != "text":
        return SCENE_TEXT_WORDS
    train = session.profile.synthetic.train_pairs  # TextZoom's own size in the paper profile
    return train - min(VALIDATION_PAIRS, train // 5)


def training_step(session: Session, stage: Stage, batch: int) -> tuple[nn.Module, Callable]:
    """A freshly initialised paper-size model of the stage and a function computing its loss
    on one random batch, as the stage's training loop does."""
    lr, hr = torch.rand(batch, 3, 16, 64), torch.rand(batch, 3, 32, 128)
    words = [WORDS[i % len(WORDS)] for i in range(batch)]
    device = torch.device("cpu")
    if stage.kind == "sr":
        recipe = recipe_for(session, stage.recipe)
        model = create_model(recipe.model, recipe.size)
        if recipe.loss in LOSSES:
            loss = LOSSES[recipe.loss]
        else:
            loss = TextFocusLoss(create_model("guide", recipe.size))
        return model, lambda: loss(model(lr), hr, words)
    if stage.kind == "recognizer":
        size = recipe_for(session, stage.recipe).size
        model = create_model("guide", size)
        return model, lambda: recognizer_batch_loss()(model, (lr, hr, words), device)
    model = create_model("cdistnet", recipe_for(session, stage.recipe).size)
    return model, lambda: cdistnet_batch_loss("hr")(model, (lr, hr, words), device)


def counted_step(
    model: nn.Module, loss: Callable[[], torch.Tensor], batch: int
) -> tuple[TrainingMemory, float]:
    """Memory and FLOPs per image of one training step, from one forward and backward pass."""
    measured: list[TrainingMemory] = []
    flops = flops_per_image(
        lambda: measured.append(training_memory(model, loss, backward=True)), batch
    )
    return measured[0], flops


def stage_costs(
    session: Session, rates: Mapping[str, float], measured_batch: int = 2
) -> list[dict[str, object]]:
    """Per stage: recipe batch, epochs or steps, images, parameters, counted memory at the
    recipe's batch, training FLOPs per image, and hours at the recorded rate (None if none)."""
    rows = []
    for stage in STAGES:
        config = stage_config(session, stage)
        pairs = training_pairs(session, stage)
        images = config.total_steps(pairs) * config.batch_size
        model, loss = training_step(session, stage, measured_batch)
        memory, flops = counted_step(model, loss, measured_batch)
        rate = rates.get(stage.rate_row) if stage.rate_row else None
        rows.append(
            {
                "stage": stage.title,
                "recipe": stage.recipe,
                "batch": config.batch_size,
                "length": f"{config.epochs} epochs" if config.epochs else f"{config.steps} steps",
                "images": images,
                "parameters": parameter_count(model),
                "memory": memory.at_batch(measured_batch, config.batch_size),
                "flops_per_image": flops,
                "hours": images / rate / 3600 if rate else None,
            }
        )
    return rows


def reading_flops_per_image(beam_size: int, steps: int = 12, batch: int = 2) -> float:
    """FLOPs per image of the paper-size CDistNet decoding at most `steps` characters with a
    beam, on random images: the work of the benchmark's reading rows. An untrained model stops
    where its random weights make it stop, so the model is seeded as the benchmark seeds it."""
    torch.manual_seed(0)
    model = create_model("cdistnet", "paper").eval()
    images = torch.rand(batch, 3, 32, 128)
    with torch.no_grad():
        return flops_per_image(lambda: read_words(model, images, beam_size, steps), batch)


def utilisation(
    costs: list[dict[str, object]], rates: Mapping[str, float], peak: float
) -> list[dict[str, object]]:
    """For each recorded paper-size row whose work was counted (a stage's training step, or
    reading): images/s, FLOPs per image, achieved FLOP/s and its share of `peak`."""
    step_flops = {cost["recipe"]: cost["flops_per_image"] for cost in costs}
    counted = {stage.rate_row: stage.recipe for stage in STAGES if stage.rate_row}
    rows = []
    for name, rate in rates.items():
        reading = re.match(r"CDistNet reading, paper, beam (\d+)\b", name)
        if reading:
            flops, counted_as = reading_flops_per_image(int(reading[1])), "reading"
        elif name in counted:
            flops, counted_as = step_flops[counted[name]], f"training step of {counted[name]}"
        else:
            continue
        rows.append(
            {
                "measurement": name,
                "counted as": counted_as,
                "images_per_second": rate,
                "flops_per_image": flops,
                "flops_per_second": flops * rate,
                "share_of_peak": flops * rate / peak,
            }
        )
    return rows
