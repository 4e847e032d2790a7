"""Named, cached CDistNet runs: pretraining on HR words, then the paper's second stage,
fine-tuning on the images a pipeline will feed it (HR, bicubic, or an SR recipe's output).

As with SR recipes, the checkpoint name hashes the recipe, its data, its starting point and the
SR model whose images it reads, so a changed ingredient never reuses stale weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

from ocrsr_lib.augment import augmentation
from ocrsr_lib.checkpoints import load_state_dict_strict
from ocrsr_lib.config import Session
from ocrsr_lib.models.cdistnet import CDISTNET_CONFIGS, CDistNet
from ocrsr_lib.reading import IMAGE_SOURCES, word_accuracy
from ocrsr_lib.recipes import (
    recipe_key,
    short_hash,
    text_fingerprint,
    text_train_and_validation,
    trained_sr,
    within_budget,
)
from ocrsr_lib.recognition import cdistnet_batch_loss
from ocrsr_lib.train import TrainConfig, TrainResult, train_model


@dataclass(frozen=True)
class CDistNetRecipe:
    """Size, training settings, the images it reads, and the run it starts from."""

    size: str  # a key of CDISTNET_CONFIGS
    train: TrainConfig
    images: str = "hr"  # "hr", "bicubic", "lr" or the name of an SR recipe
    start_from: str | None = None  # another CDistNet recipe
    augment: bool = True
    smoothing: float = 0.1

    def __post_init__(self) -> None:
        if self.size not in CDISTNET_CONFIGS:
            raise ValueError(f"unknown CDistNet size {self.size!r}: {list(CDISTNET_CONFIGS)}")


# the official optimiser: Adam (0.9, 0.98), eps 1e-9, gradient clip 5
_OFFICIAL = {"betas": (0.9, 0.98), "adam_epsilon": 1e-9, "gradient_clip": 5.0}


def _fine_tunes(size: str, settings: TrainConfig) -> dict[str, CDistNetRecipe]:
    images = ("hr", "bicubic", "stn-edsr-text-focus", "tbsrn-text-focus")
    return {f"finetune-{i}": CDistNetRecipe(size, settings, i, "pretrain") for i in images}


def _demo_recipes() -> dict[str, CDistNetRecipe]:
    # provisional budgets: sized against the book's time budget before chapter 4 uses them
    pretrain = TrainConfig(
        steps=1500,
        batch_size=32,
        learning_rate=1e-3,
        schedule="cosine",
        warmup_steps=50,
        validate_every=500,
        **_OFFICIAL,
    )
    fine_tune = replace(
        pretrain, steps=300, learning_rate=3e-4, warmup_steps=10, validate_every=100
    )
    return {"pretrain": CDistNetRecipe("demo", pretrain), **_fine_tunes("demo", fine_tune)}


def _paper_recipes() -> dict[str, CDistNetRecipe]:
    # official schedule: Noam with warm-up 10000 at learning rate 512^-0.5
    pretrain = TrainConfig(
        epochs=10,
        batch_size=128,
        learning_rate=512**-0.5,
        schedule="noam",
        warmup_steps=10000,
        validate_every=2000,
        **_OFFICIAL,
    )
    fine_tune = replace(pretrain, epochs=20, warmup_steps=2000)
    return {"pretrain": CDistNetRecipe("paper", pretrain), **_fine_tunes("paper", fine_tune)}


CDISTNET_RECIPES: dict[str, dict[str, CDistNetRecipe]] = {
    "demo": _demo_recipes(),
    "paper": _paper_recipes(),
}


def cdistnet_recipe_for(session: Session, name: str) -> CDistNetRecipe:
    """The CDistNet recipe called `name` in the session's profile."""
    recipes = CDISTNET_RECIPES[session.profile.recipe_table]
    if name not in recipes:
        profile = session.profile.name
        raise KeyError(
            f"no CDistNet recipe {name!r} in profile {profile!r}; known: {list(recipes)}"
        )
    return within_budget(session, recipes[name])


def cdistnet_key(session: Session, name: str) -> str:
    """A short hash of everything that determines the recipe's weights."""
    recipe = cdistnet_recipe_for(session, name)
    parts = {
        "recipe": asdict(recipe),
        "data": text_fingerprint(session),
        "start": cdistnet_key(session, recipe.start_from) if recipe.start_from else None,
        "images": None if recipe.images in IMAGE_SOURCES else recipe_key(session, recipe.images),
    }
    return short_hash(parts)


def cdistnet_checkpoint_path(session: Session, name: str) -> Path:
    """Where the CDistNet recipe's training checkpoint lives in the session's cache."""
    return session.path("checkpoints") / f"cdistnet-{name}-{cdistnet_key(session, name)}.pt"


@dataclass
class TrainedCDistNet:
    """A trained CDistNet (eval mode), the image source it was trained on, its history, file."""

    name: str
    model: CDistNet
    images: str | nn.Module
    result: TrainResult
    checkpoint: Path


def image_source(session: Session, images: str) -> str | nn.Module:
    """ "hr", "bicubic" or "lr" as they are; an SR recipe name becomes its trained model."""
    return images if images in IMAGE_SOURCES else trained_sr(session, images).model


def trained_cdistnet(session: Session, name: str) -> TrainedCDistNet:
    """The recipe's CDistNet: trained now (resuming if interrupted) or read from the cache."""
    recipe = cdistnet_recipe_for(session, name)
    path = cdistnet_checkpoint_path(session, name)
    torch.manual_seed(recipe.train.seed)
    model = CDistNet(CDISTNET_CONFIGS[recipe.size])
    if recipe.start_from and not path.exists():
        start = trained_cdistnet(session, recipe.start_from).model
        load_state_dict_strict(model, start.state_dict(), f"start {recipe.start_from}")
    source = image_source(session, recipe.images)
    train, validation = text_train_and_validation(session)

    def validate(trained: nn.Module) -> dict:
        device = next(trained.parameters()).device
        accuracy = word_accuracy(trained, validation, source, device)
        return {"validation": {"accuracy": accuracy}}

    augment = augmentation() if recipe.augment else None
    result = train_model(
        model,
        train,
        cdistnet_batch_loss(source, recipe.smoothing, augment),
        recipe.train,
        checkpoint_path=path,
        validate=validate,
        device=session.device,
    )
    model.eval()
    return TrainedCDistNet(name, model, source, result, path)
