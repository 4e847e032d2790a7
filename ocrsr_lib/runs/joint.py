"""One-stage runs, the alternative the paper compares its two stages with (section 4.1.3): the
SR model and CDistNet trained together from the same starting points, the SR model's loss plus
CDistNet's reading loss on the SR images as one objective. The two-stage pipeline it is judged
against is the SR recipe followed by the CDistNet fine-tune on its images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ocrsr_lib.checkpoints import load_state_dict_strict
from ocrsr_lib.config import Session
from ocrsr_lib.evaluation import word_accuracy
from ocrsr_lib.models import create_model, model_sizes
from ocrsr_lib.models.cdistnet import encode_targets
from ocrsr_lib.runs.cdistnet import CDISTNET_RECIPES, label_smoothed_cross_entropy
from ocrsr_lib.runs.core import Family, recipe_for, register_family, run_key, trained
from ocrsr_lib.runs.data import text_fingerprint, text_train_and_validation
from ocrsr_lib.runs.sr import load_start, loss_for
from ocrsr_lib.train import (
    BatchLoss,
    LossFunction,
    TrainConfig,
    TrainResult,
    call_loss,
    train_model,
)


@dataclass(frozen=True)
class JointRecipe:
    """The SR recipe whose model, loss and starting point the SR part takes, the CDistNet run
    the reader starts from, the weight of the reading loss, and the one stage's settings."""

    size: str  # a size of the "joint" model
    sr: str  # an SR recipe (its model, loss, guide and start are used, not its settings)
    ocr_start: str  # a CDistNet recipe
    train: TrainConfig
    reading_weight: float = 1.0
    smoothing: float = 0.1
    start_from = None  # two starting points, loaded by `fit` (class attribute: not in the key)
    model = "joint"

    def __post_init__(self) -> None:
        if self.size not in model_sizes("joint"):
            raise ValueError(f"unknown joint size {self.size!r}: {list(model_sizes('joint'))}")


def _joint_recipes(table: str) -> dict[str, JointRecipe]:
    # the same budget as the second stage it replaces: the fine-tune's steps, batch and schedule
    fine_tune = CDISTNET_RECIPES[table]["finetune-stn-edsr-text-focus"].train
    return {
        "joint-stn-edsr-text-focus": JointRecipe(
            table, "stn-edsr-text-focus", "pretrain", fine_tune
        )
    }


JOINT_RECIPES: dict[str, dict[str, JointRecipe]] = {
    table: _joint_recipes(table) for table in ("demo", "paper")
}


def build(recipe: JointRecipe) -> nn.Module:
    """The recipe's fresh SR model and CDistNet, as one module."""
    return create_model("joint", recipe.size)


def key_parts(session: Session, recipe: JointRecipe) -> dict:
    """The training data, the key of the SR run it borrows model, loss and start from (which
    covers that recipe, its start and its guide; it is also what the joint run is judged
    against), and the key of CDistNet's starting run."""
    return {
        "data": text_fingerprint(session),
        "sr": run_key(session, recipe.sr),
        "ocr_start": run_key(session, recipe.ocr_start),
    }


def joint_batch_loss(sr_loss: LossFunction, reading_weight: float, smoothing: float) -> BatchLoss:
    """The SR loss of the SR images plus `reading_weight` times CDistNet's smoothed
    cross-entropy reading them; gradients reach both models."""

    def batch_loss(network: nn.Module, batch: tuple, device: torch.device) -> tuple:
        lr, hr, labels = batch
        targets = encode_targets(list(labels), device=device)
        sr, logits = network(lr.to(device), targets)
        total, terms = call_loss(sr_loss, sr.float(), hr.to(device), labels)
        reading = label_smoothed_cross_entropy(logits, targets[:, 1:], smoothing)
        return total + reading_weight * reading, {**terms, "reading": reading.detach()}

    return batch_loss


def fit(session: Session, recipe: JointRecipe, model: nn.Module, checkpoint: Path) -> TrainResult:
    """Start both parts from their runs (a resumed checkpoint then overrides them) and train
    them together on the TextZoom train split."""
    sr_recipe = recipe_for(session, recipe.sr)
    if sr_recipe.start_from:
        load_start(model.sr, trained(session, sr_recipe.start_from))
    start = trained(session, recipe.ocr_start)
    load_state_dict_strict(model.ocr, start.model.state_dict(), f"start {start.name}")
    train, validation = text_train_and_validation(session)

    def validate(network: nn.Module) -> dict:
        device = next(network.parameters()).device
        accuracy = word_accuracy(network.ocr, validation, network.sr, device)
        return {"validation": {"accuracy": accuracy}}

    loss = joint_batch_loss(loss_for(session, sr_recipe), recipe.reading_weight, recipe.smoothing)
    return train_model(
        model,
        train,
        loss,
        recipe.train,
        checkpoint_path=checkpoint,
        validate=validate,
        device=session.device,
    )


JOINT_FAMILY = register_family(Family("joint", JOINT_RECIPES, build, key_parts, fit))
