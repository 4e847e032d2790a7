"""Named, cached SR training runs: one recipe per (profile, model), shared by chapters and CLI.

A recipe fixes the model, its size, the loss, the training settings, the data and an optional
starting point (another recipe). `trained_sr` trains it once and keeps the checkpoint in the
session's cache under a name that hashes the recipe, so later chapters get the same weights
back without training, and a changed recipe never reuses a stale checkpoint.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from ocrsr_lib.checkpoints import (
    load_checkpoint,
    load_official,
    load_state_dict_strict,
    save_checkpoint,
)
from ocrsr_lib.config import OFFICIAL_RUNS, Session
from ocrsr_lib.data import session_splits, session_textzoom_root
from ocrsr_lib.data.natural import NaturalImagePairs
from ocrsr_lib.losses import TextFocusLoss, TextFocusWeights, weights_from_confusions
from ocrsr_lib.models import EDSR, EDSR_CONFIGS, TBSRN, TBSRN_CONFIGS, RectifiedSR
from ocrsr_lib.models.recognizer import RECOGNIZER_CONFIGS, TextRecognizer
from ocrsr_lib.reading import confusion_weights, recognizer_batch_loss, word_accuracy
from ocrsr_lib.train import (
    LossFunction,
    TrainConfig,
    TrainResult,
    l1_loss,
    mse_loss,
    train_model,
    train_sr,
)

RecipeT = TypeVar("RecipeT")  # any frozen recipe dataclass with a `train` TrainConfig

SR_MODELS = ("edsr", "stn-edsr", "tbsrn")
LOSSES: dict[str, LossFunction] = {"mse": mse_loss, "l1": l1_loss}
# losses that need the guiding recognizer: the text-focus loss and its ablations
TEXT_FOCUS_TERMS: dict[str, TextFocusWeights] = {
    "mse+position": TextFocusWeights(content=0.0),
    "mse+content": TextFocusWeights(position=0.0),
    "text-focus": TextFocusWeights(),
}
DATA = ("text", "natural")
VALIDATION_PAIRS = 200  # held out of the training split (at most a fifth), never from test


@dataclass(frozen=True)
class SRRecipe:
    """How one SR model is made: architecture and size, loss, data, settings, starting point."""

    model: str  # one of SR_MODELS
    size: str  # a key of EDSR_CONFIGS or TBSRN_CONFIGS
    loss: str  # a key of LOSSES
    train: TrainConfig
    data: str = "text"  # "text": the session's TextZoom train split; "natural": non-text
    natural_pairs: int = 4000  # size of the non-text set when data == "natural"
    start_from: str | None = None  # the recipe whose trained weights start this one
    guide: str = "guide"  # the recognizer recipe that guides a text-focus loss
    confusion_strength: float = 1.0  # weight table 1 + strength * confusion rate
    loss_scale: float = 1.0  # the official text-focus loop multiplies the loss by 100

    def __post_init__(self) -> None:
        if self.model not in SR_MODELS:
            raise ValueError(f"unknown SR model {self.model!r}; choose one of {SR_MODELS}")
        sizes = TBSRN_CONFIGS if self.model == "tbsrn" else EDSR_CONFIGS
        if self.size not in sizes:
            raise ValueError(f"unknown {self.model} size {self.size!r}; choose from {list(sizes)}")
        if self.loss not in LOSSES and self.loss not in TEXT_FOCUS_TERMS:
            known = sorted([*LOSSES, *TEXT_FOCUS_TERMS])
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {known}")
        if self.data not in DATA:
            raise ValueError(f"unknown data {self.data!r}; choose one of {DATA}")


def _demo_recipes() -> dict[str, SRRecipe]:
    # short CPU runs: warm-up and cosine decay get far more out of a few hundred steps
    text = TrainConfig(
        steps=400,
        batch_size=16,
        learning_rate=1e-3,
        schedule="cosine",
        warmup_steps=20,
        validate_every=100,
    )
    natural = replace(text, steps=300)
    tbsrn = replace(text, steps=2400, batch_size=4)  # converges slowly: many small steps
    return {
        "edsr-natural": SRRecipe("edsr", "demo", "mse", natural, data="natural"),
        "stn-edsr": SRRecipe("stn-edsr", "demo", "mse", text, start_from="edsr-natural"),
        "edsr": SRRecipe("edsr", "demo", "mse", text, start_from="edsr-natural"),
        "stn-edsr-scratch": SRRecipe("stn-edsr", "demo", "mse", text),
        "tbsrn": SRRecipe("tbsrn", "demo", "mse", tbsrn),
        **_demo_text_focus_recipes(),
    }


def _demo_text_focus_recipes() -> dict[str, SRRecipe]:
    # chapter 3's ablation: every loss fine-tunes chapter 2's MSE-trained model for the same
    # number of steps (MSE included, so the comparison is at equal budget)
    fine_tune = TrainConfig(
        steps=200,
        batch_size=16,
        learning_rate=2e-4,
        schedule="cosine",
        warmup_steps=10,
        validate_every=100,
    )
    recipes = {
        f"stn-edsr-{loss}": SRRecipe("stn-edsr", "demo", loss, fine_tune, start_from="stn-edsr")
        for loss in ("mse", "mse+position", "mse+content", "text-focus")
    }
    tbsrn = replace(fine_tune, steps=400, batch_size=8)  # the same 3200 images
    recipes["tbsrn-text-focus"] = SRRecipe("tbsrn", "demo", "text-focus", tbsrn, start_from="tbsrn")
    return recipes


def _paper_recipes() -> dict[str, SRRecipe]:
    # TBSRN's public training settings: Adam 1e-4, betas (0.5, 0.999), batch 16, 500 epochs
    text = TrainConfig(epochs=500, batch_size=16, learning_rate=1e-4, validate_every=2000)
    natural = replace(text, epochs=100)
    focus = replace(text, gradient_clip=0.25)
    return {
        "edsr-natural": SRRecipe("edsr", "paper", "mse", natural, "natural", natural_pairs=17367),
        "stn-edsr": SRRecipe("stn-edsr", "paper", "mse", text, start_from="edsr-natural"),
        "edsr": SRRecipe("edsr", "paper", "mse", text, start_from="edsr-natural"),
        "stn-edsr-scratch": SRRecipe("stn-edsr", "paper", "mse", text),
        "tbsrn": SRRecipe("tbsrn", "paper", "mse", text),
        # the paper's SR model: general EDSR + STN trained with the text-focus loss, with the
        # official loop's x100 loss scale and gradient clipping at 0.25
        "stn-edsr-text-focus": SRRecipe(
            "stn-edsr", "paper", "text-focus", focus, start_from="edsr-natural", loss_scale=100.0
        ),
        "tbsrn-text-focus": SRRecipe("tbsrn", "paper", "text-focus", focus, loss_scale=100.0),
    }


SR_RECIPES: dict[str, dict[str, SRRecipe]] = {"demo": _demo_recipes(), "paper": _paper_recipes()}


def recipe_for(session: Session, name: str) -> SRRecipe:
    """The recipe called `name` in the session's profile."""
    return recipe_from(SR_RECIPES, session, name, "SR")


def recipe_from(
    tables: dict[str, dict[str, RecipeT]], session: Session, name: str, kind: str
) -> RecipeT:
    """Recipe `name` of the session profile's table, its training cut to the profile's budget
    and with the session's training overrides (batch size, bf16, ...)."""
    recipes = tables[session.profile.recipe_table]
    if name not in recipes:
        profile = session.profile.name
        raise KeyError(f"no {kind} recipe {name!r} in profile {profile!r}; known: {list(recipes)}")
    recipe = recipes[name]
    train = replace(recipe.train.scaled(session.profile.budget), **session.train_overrides)
    return replace(recipe, train=train)


def build_sr_model(model: str, size: str, stn_at_eval: bool = False) -> nn.Module:
    """A fresh model: EDSR, the paper's STN + EDSR, or TBSRN (with its STN), at `size`."""
    if model == "edsr":
        return EDSR(EDSR_CONFIGS[size])
    if model == "stn-edsr":
        return RectifiedSR(EDSR(EDSR_CONFIGS[size]), stn_at_eval=stn_at_eval)
    if model == "tbsrn":
        return TBSRN(replace(TBSRN_CONFIGS[size], stn_at_eval=stn_at_eval))
    raise ValueError(f"unknown SR model {model!r}; choose one of {SR_MODELS}")


def hold_out(dataset: Dataset, count: int, seed: int = 0) -> tuple[Subset, Subset]:
    """Split `dataset` into (training, validation) with `count` random samples held out."""
    if not 0 < count < len(dataset):
        raise ValueError(f"cannot hold out {count} of {len(dataset)} samples")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, sorted(order[count:])), Subset(dataset, sorted(order[:count]))


def text_train_and_validation(session: Session) -> tuple[Subset, Subset]:
    """The session's train split minus a held-out validation part (at most a fifth)."""
    full = session_splits(session)["train"]
    return hold_out(full, min(VALIDATION_PAIRS, len(full) // 5), session.seed)


# TrainConfig fields that do not change the weights and joined TrainConfig after caches were
# named: left out of the hashes so that existing trained runs keep their names
UNHASHED_TRAIN_FIELDS = ("compile",)


def recipe_fields(recipe: object) -> dict:
    """A recipe as a dict for naming its cached run, without UNHASHED_TRAIN_FIELDS."""
    fields = asdict(recipe)
    for name in UNHASHED_TRAIN_FIELDS:
        fields["train"].pop(name, None)
    return fields


def official_key(session: Session, name: str) -> str | None:
    """For a recipe replaced by an official file: a short hash naming that file (its path, size
    and modification time); None for a recipe that is trained."""
    path = session.official.get(name)
    if path is None:
        return None
    stat = path.stat()
    return short_hash(
        {"official": str(path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns}
    )


def official_model(session: Session, name: str) -> nn.Module:
    """The official checkpoint that replaces recipe `name`, converted (eval mode)."""
    return load_official(OFFICIAL_RUNS[name], session.official[name]).eval()


def short_hash(parts: dict) -> str:
    """12 hex digits of the SHA-256 of `parts` as sorted JSON: names a cached artifact."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def recipe_data(session: Session, recipe: SRRecipe) -> tuple[Dataset, dict[str, Dataset]]:
    """Training data and validation splits; text validation is held out of the train split."""
    if recipe.data == "natural":
        train = NaturalImagePairs(recipe.natural_pairs, seed=session.seed)
        validation = NaturalImagePairs(VALIDATION_PAIRS, seed=session.seed + 1)
        return train, {"natural-validation": validation}
    train, validation = text_train_and_validation(session)
    return train, {"validation": validation}


def text_fingerprint(session: Session) -> str:
    """What identifies the text data: the TextZoom folder (its name hashes synthetic data)."""
    return f"text:{Path(session_textzoom_root(session)).resolve()}:{session.seed}"


def data_fingerprint(session: Session, recipe: SRRecipe) -> str:
    """What identifies an SR recipe's training data: non-text settings or the text data."""
    if recipe.data == "natural":
        return f"natural:{recipe.natural_pairs}:{session.seed}"
    return text_fingerprint(session)


def recipe_key(session: Session, name: str) -> str:
    """A short hash of everything that determines the recipe's weights, starting point included."""
    official = official_key(session, name)
    if official:
        return official
    recipe = recipe_for(session, name)
    parts = {
        "recipe": recipe_fields(recipe),
        "data": data_fingerprint(session, recipe),
        "start": recipe_key(session, recipe.start_from) if recipe.start_from else None,
        "guide": recognizer_checkpoint_path(session, recipe.guide).name
        if recipe.loss in TEXT_FOCUS_TERMS
        else None,
    }
    return short_hash(parts)


def checkpoint_path(session: Session, name: str) -> Path:
    """Where the recipe's training checkpoint lives in the session's cache."""
    return session.path("checkpoints") / f"sr-{name}-{recipe_key(session, name)}.pt"


@dataclass
class TrainedSR:
    """A trained model (in eval mode), its training history and its checkpoint file."""

    name: str
    model: nn.Module
    result: TrainResult
    checkpoint: Path


def trained_sr(session: Session, name: str, stn_at_eval: bool = False) -> TrainedSR:
    """The recipe's trained model: trained now (resuming if interrupted) or from the cache, or
    the official checkpoint that the session names for it."""
    if name in session.official:
        model = official_model(session, name)
        return TrainedSR(name, model, TrainResult(steps=0), session.official[name])
    recipe = recipe_for(session, name)
    torch.manual_seed(recipe.train.seed)  # the same initial weights whatever ran before
    model = build_sr_model(recipe.model, recipe.size, stn_at_eval)
    path = checkpoint_path(session, name)
    if recipe.start_from and not path.exists():
        start = trained_sr(session, recipe.start_from)
        load_start(model, start)
    train, validation = recipe_data(session, recipe)
    result = train_sr(
        model,
        train,
        loss_for(session, recipe),
        recipe.train,
        checkpoint_path=path,
        validation=validation,
        device=session.device,
    )
    model.eval()
    return TrainedSR(name, model, result, path)


def loss_for(session: Session, recipe: SRRecipe) -> LossFunction:
    """The recipe's loss; text-focus losses get the trained guide and its confusion weights."""
    if recipe.loss in LOSSES:
        return LOSSES[recipe.loss]
    guide = trained_recognizer(session, recipe.guide).model
    table = guide_weight_table(session, recipe.guide, recipe.confusion_strength)
    weights = replace(TEXT_FOCUS_TERMS[recipe.loss], scale=recipe.loss_scale)
    loss = TextFocusLoss(copy.deepcopy(guide), table, weights)
    return loss.to(session.device)


def guide_confusions(session: Session, guide: str) -> torch.Tensor:
    """The guide's confusion counts on bicubic-upscaled LR training images (cached)."""
    checkpoint = recognizer_checkpoint_path(session, guide)
    path = session.path("tables") / f"confusions-{checkpoint.stem}.pt"
    if path.is_file():
        return load_checkpoint(path)["counts"]
    recognizer = trained_recognizer(session, guide).model
    counts, _ = confusion_weights(
        recognizer, session_splits(session)["train"], "bicubic", device=session.device
    )
    save_checkpoint(path, {"counts": counts})
    return counts


def guide_weight_table(session: Session, guide: str, strength: float = 1.0) -> torch.Tensor:
    """The content term's weight table from the guide's confusions on LR images."""
    return weights_from_confusions(guide_confusions(session, guide), strength)


def load_start(model: nn.Module, start: TrainedSR) -> None:
    """Copy a starting model's weights into `model`: all of them, or the SR part behind an STN."""
    target = (
        model.sr
        if isinstance(model, RectifiedSR) and not isinstance(start.model, RectifiedSR)
        else model
    )
    load_state_dict_strict(target, start.model.state_dict(), f"start {start.name}")


def load_trained_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the model weights of a training checkpoint written by `train_sr`."""
    checkpoint = load_checkpoint(path)
    load_state_dict_strict(model, checkpoint["model"], f"checkpoint {path}")
    return model.eval()


@dataclass(frozen=True)
class RecognizerRecipe:
    """How a recognizer is made: size, training settings (seed included), label smoothing."""

    size: str  # a key of RECOGNIZER_CONFIGS
    train: TrainConfig
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.size not in RECOGNIZER_CONFIGS:
            raise ValueError(f"unknown recognizer size {self.size!r}: {list(RECOGNIZER_CONFIGS)}")


def _recognizer_recipes(size: str, train: TrainConfig) -> dict[str, RecognizerRecipe]:
    # the judge differs only by its seed (initial weights, batch order): an opinion that never
    # guided SR training
    return {
        "guide": RecognizerRecipe(size, train),
        "judge": RecognizerRecipe(size, replace(train, seed=train.seed + 1)),
    }


_DEMO_GUIDE = TrainConfig(
    steps=1500,
    batch_size=32,
    learning_rate=1e-3,
    schedule="cosine",
    warmup_steps=50,
    validate_every=500,
)
_PAPER_GUIDE = TrainConfig(epochs=100, batch_size=64, learning_rate=1e-4, validate_every=2000)
RECOGNIZER_RECIPES: dict[str, dict[str, RecognizerRecipe]] = {
    "demo": _recognizer_recipes("demo", _DEMO_GUIDE),
    "paper": _recognizer_recipes("paper", _PAPER_GUIDE),
}


def recognizer_recipe_for(session: Session, name: str) -> RecognizerRecipe:
    """The recognizer recipe called `name` in the session's profile."""
    return recipe_from(RECOGNIZER_RECIPES, session, name, "recognizer")


def recognizer_checkpoint_path(session: Session, name: str) -> Path:
    """Where the recognizer recipe's training checkpoint lives in the session's cache."""
    official = official_key(session, name)
    if official:
        return session.path("checkpoints") / f"recognizer-{name}-official-{official}.pt"
    recipe = recognizer_recipe_for(session, name)
    parts = {"recipe": recipe_fields(recipe), "data": f"text:{session_textzoom_root(session)}"}
    return session.path("checkpoints") / f"recognizer-{name}-{short_hash(parts)}.pt"


@dataclass
class TrainedRecognizer:
    """A trained recognizer (frozen, eval mode), its history and its checkpoint file."""

    name: str
    model: TextRecognizer
    result: TrainResult
    checkpoint: Path


def trained_recognizer(session: Session, name: str) -> TrainedRecognizer:
    """The recipe's recognizer, trained on the HR words of the train split, or from the cache;
    or the official checkpoint that the session names for it."""
    if name in session.official:
        model = official_model(session, name)
        return TrainedRecognizer(name, model, TrainResult(steps=0), session.official[name])
    recipe = recognizer_recipe_for(session, name)
    torch.manual_seed(recipe.train.seed)
    model = TextRecognizer(RECOGNIZER_CONFIGS[recipe.size])
    train, validation = text_train_and_validation(session)

    def validate(trained: nn.Module) -> dict:
        device = next(trained.parameters()).device
        return {"validation": {"accuracy": word_accuracy(trained, validation, "hr", device)}}

    path = recognizer_checkpoint_path(session, name)
    result = train_model(
        model,
        train,
        recognizer_batch_loss(recipe.label_smoothing),
        recipe.train,
        checkpoint_path=path,
        validate=validate,
        device=session.device,
    )
    model.eval()
    return TrainedRecognizer(name, model, result, path)
