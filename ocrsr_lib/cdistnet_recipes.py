"""Named, cached CDistNet runs: pretraining on HR words, then the paper's second stage,
fine-tuning on the images a pipeline will feed it (HR, bicubic, or an SR recipe's output).

As with SR recipes, the checkpoint name hashes the recipe, its data, its starting point and the
SR model whose images it reads, so a changed ingredient never reuses stale weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import ConcatDataset, Dataset

from ocrsr_lib.augment import augmentation
from ocrsr_lib.checkpoints import load_checkpoint, load_state_dict_strict, save_checkpoint
from ocrsr_lib.config import SCENE_TEXT_ENV, Session
from ocrsr_lib.data import scoring_splits, split_labels
from ocrsr_lib.data.scene_text import SceneTextDataset
from ocrsr_lib.models.cdistnet import CDISTNET_CONFIGS, CDistNet
from ocrsr_lib.reading import (
    IMAGE_SOURCES,
    accuracy_of,
    read_split,
    with_average,
    word_accuracy,
)
from ocrsr_lib.recipes import (
    official_key,
    official_model,
    recipe_fields,
    recipe_from,
    recipe_key,
    short_hash,
    text_fingerprint,
    text_train_and_validation,
    trained_sr,
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
    data: str = "text"  # "text": the TextZoom train split; "scene-text": the session's MJ/ST

    def __post_init__(self) -> None:
        if self.size not in CDISTNET_CONFIGS:
            raise ValueError(f"unknown CDistNet size {self.size!r}: {list(CDISTNET_CONFIGS)}")
        if self.data not in ("text", "scene-text"):
            raise ValueError(f"unknown CDistNet data {self.data!r}; choose 'text' or 'scene-text'")
        if self.data == "scene-text" and self.images != "hr":
            raise ValueError("scene-text LMDBs hold one image per word: train on images='hr'")


# the official optimiser: Adam (0.9, 0.98), eps 1e-9, gradient clip 5
_OFFICIAL = {"betas": (0.9, 0.98), "adam_epsilon": 1e-9, "gradient_clip": 5.0}


def _fine_tunes(
    size: str, settings: TrainConfig, augment: bool = True
) -> dict[str, CDistNetRecipe]:
    images = ("hr", "bicubic", "stn-edsr-text-focus", "tbsrn-text-focus")
    return {f"finetune-{i}": CDistNetRecipe(size, settings, i, "pretrain", augment) for i in images}


def _demo_recipes() -> dict[str, CDistNetRecipe]:
    # measured on the demo words: at a constant 3e-4 the attention stays flat (accuracy ~0.5%)
    # for about 4000 steps, then aligns; 8000 steps reach ~64% on the held-out HR words
    pretrain = TrainConfig(
        steps=8000,
        batch_size=32,
        learning_rate=3e-4,
        schedule="constant",
        warmup_steps=200,
        validate_every=500,
        **_OFFICIAL,
    )
    # fine-tuning adapts an already aligned reader to its images: short, decaying to zero
    fine_tune = replace(
        pretrain, steps=1000, schedule="cosine", warmup_steps=50, validate_every=250
    )
    pretraining = CDistNetRecipe("demo", pretrain, augment=False)
    return {"pretrain": pretraining, **_fine_tunes("demo", fine_tune, augment=False)}


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
    pretraining = CDistNetRecipe("paper", pretrain, data="scene-text")  # MJSynth + SynthText
    return {"pretrain": pretraining, **_fine_tunes("paper", fine_tune)}


CDISTNET_RECIPES: dict[str, dict[str, CDistNetRecipe]] = {
    "demo": _demo_recipes(),
    "paper": _paper_recipes(),
}


def cdistnet_recipe_for(session: Session, name: str) -> CDistNetRecipe:
    """The CDistNet recipe called `name` in the session's profile."""
    return recipe_from(CDISTNET_RECIPES, session, name, "CDistNet")


def cdistnet_key(session: Session, name: str) -> str:
    """A short hash of everything that determines the recipe's weights."""
    official = official_key(session, name)
    if official:
        return official
    recipe = cdistnet_recipe_for(session, name)
    parts = {
        "recipe": recipe_fields(recipe),
        "data": training_data_fingerprint(session, recipe),
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


def training_data(session: Session, recipe: CDistNetRecipe) -> tuple[Dataset, Dataset]:
    """(training words, validation words): the TextZoom train split less its held-out part, or
    the session's scene-text LMDBs with the same TextZoom words held out for validation."""
    train, validation = text_train_and_validation(session)
    if recipe.data == "text":
        return train, validation
    if not session.scene_text:
        raise FileNotFoundError(
            "this CDistNet recipe pretrains on MJSynth + SynthText: give their LMDB folders with "
            f"{SCENE_TEXT_ENV}=/data/MJ{os.pathsep}/data/ST (or setup(scene_text=[...]))"
        )
    return ConcatDataset([SceneTextDataset(root) for root in session.scene_text]), validation


def training_data_fingerprint(session: Session, recipe: CDistNetRecipe) -> str:
    """What identifies a recipe's training words: the TextZoom data, plus any scene-text roots."""
    roots = [str(root.resolve()) for root in session.scene_text] if recipe.data != "text" else []
    return ":".join([text_fingerprint(session), *roots])


def image_source(session: Session, images: str) -> str | nn.Module:
    """ "hr", "bicubic" or "lr" as they are; an SR recipe name becomes its trained model."""
    return images if images in IMAGE_SOURCES else trained_sr(session, images).model


def trained_cdistnet(session: Session, name: str) -> TrainedCDistNet:
    """The recipe's CDistNet: trained now (resuming if interrupted) or read from the cache; or
    the official checkpoint that the session names for it."""
    if name in session.official:
        model = official_model(session, name)
        return TrainedCDistNet(name, model, "hr", TrainResult(steps=0), session.official[name])
    recipe = cdistnet_recipe_for(session, name)
    path = cdistnet_checkpoint_path(session, name)
    torch.manual_seed(recipe.train.seed)
    model = CDistNet(CDISTNET_CONFIGS[recipe.size])
    if recipe.start_from and not path.exists():
        start = trained_cdistnet(session, recipe.start_from).model
        load_state_dict_strict(model, start.state_dict(), f"start {recipe.start_from}")
    source = image_source(session, recipe.images)
    train, validation = training_data(session, recipe)

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


BEAM_SIZE = 10  # the paper configuration's beam width, used for every reported reading

# Table 1's pipelines: row -> (the images CDistNet reads, the CDistNet recipe reading them)
TABLE_1_PIPELINES: dict[str, tuple[str, str]] = {
    "TBSRN + CDistNet (HR-fine-tuned)": ("tbsrn-text-focus", "finetune-hr"),
    "TBSRN + CDistNet (SR-fine-tuned)": ("tbsrn-text-focus", "finetune-tbsrn-text-focus"),
    "EDSR + CDistNet (HR-fine-tuned)": ("stn-edsr-text-focus", "finetune-hr"),
    "EDSR + CDistNet (SR-fine-tuned)": ("stn-edsr-text-focus", "finetune-stn-edsr-text-focus"),
    "bicubic + CDistNet (fine-tuned)": ("bicubic", "finetune-bicubic"),
}


def readings_path(session: Session, name: str, images: str, beam_size: int) -> Path:
    """Where the readings of CDistNet recipe `name` on the test splits' `images` are cached."""
    source = images if images in IMAGE_SOURCES else f"{images}-{recipe_key(session, images)}"
    stem = cdistnet_checkpoint_path(session, name).stem
    count = session.profile.test_words
    words = "" if count is None else f"-first{count}"
    return session.path("tables") / f"readings-{stem}-{source}-beam{beam_size}{words}.pt"


def cdistnet_readings(
    session: Session, name: str, images: str, beam_size: int = BEAM_SIZE
) -> dict[str, list[str]]:
    """What CDistNet recipe `name` reads from `images` ("hr", "bicubic", "lr" or an SR recipe)
    on each scored test split (`scoring_splits`), in split order; computed once, then cached."""
    path = readings_path(session, name, images, beam_size)
    if path.is_file():
        return load_checkpoint(path)["readings"]
    model = trained_cdistnet(session, name).model.to(session.device)
    source = image_source(session, images)
    reader = BeamReader(model, beam_size)
    readings = {}
    for split, data in scoring_splits(session).items():
        readings[split], _ = read_split(reader, data, source, session.device)
    save_checkpoint(path, {"readings": readings})
    return readings


class BeamReader(nn.Module):
    """A CDistNet whose `.read` decodes with a fixed beam width (what `read_split` calls)."""

    def __init__(self, model: CDistNet, beam_size: int) -> None:
        super().__init__()
        self.model, self.beam_size = model, beam_size

    def read(self, images: torch.Tensor) -> list[str]:
        return self.model.read(images, self.beam_size)


def pipeline_accuracy(session: Session, images: str, name: str) -> dict[str, float]:
    """Word accuracy of CDistNet recipe `name` reading `images`, per test split and on average
    (weighted by split size, as TextZoom averages)."""
    test = scoring_splits(session)
    readings = cdistnet_readings(session, name, images)
    return with_average({s: accuracy_of(readings[s], split_labels(test[s])) for s in test}, test)


def table_1(session: Session) -> dict[str, dict[str, float]]:
    """The paper's Table 1 as this session measures it: every pipeline's accuracy per
    difficulty and on average (trains and reads whatever is not cached yet)."""
    return {
        row: pipeline_accuracy(session, images, name)
        for row, (images, name) in TABLE_1_PIPELINES.items()
    }
