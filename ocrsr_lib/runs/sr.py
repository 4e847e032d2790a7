"""SR runs: EDSR, the paper's STN + EDSR and TBSRN, trained with MSE or the text-focus loss
(and its ablations), on text or on non-text images; one recipe table per profile."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn
from torch.utils.data import Dataset

from ocrsr_lib.checkpoints import load_state_dict_strict
from ocrsr_lib.config import Session
from ocrsr_lib.data.div2k import DIV2KPairs, div2k_identity
from ocrsr_lib.data.natural import NaturalImagePairs
from ocrsr_lib.losses import TextFocusLoss, TextFocusWeights
from ocrsr_lib.models import RectifiedSR, create_model, model_sizes
from ocrsr_lib.runs.core import Family, Run, recipe_for, register_family, run_key, trained
from ocrsr_lib.runs.data import VALIDATION_PAIRS, text_fingerprint, text_train_and_validation
from ocrsr_lib.runs.guide import guide_weight_table
from ocrsr_lib.train import LossFunction, TrainConfig, TrainResult, l1_loss, mse_loss, train_sr

SR_MODELS = ("edsr", "stn-edsr", "tbsrn")
LOSSES: dict[str, LossFunction] = {"mse": mse_loss, "l1": l1_loss}
# losses that need the guiding recognizer: the text-focus loss and its ablations
TEXT_FOCUS_TERMS: dict[str, TextFocusWeights] = {
    "mse+position": TextFocusWeights(content=0.0),
    "mse+content": TextFocusWeights(position=0.0),
    "text-focus": TextFocusWeights(),
}
DATA = ("text", "natural")
# the paper's pipeline rectifies with the STN at test time too (the official TBSRN code only in
# training); a trained SR run's model runs its STN in eval mode (chapter 2 measures both)
STN_AT_EVALUATION = True
RECTIFIED_MODELS = ("stn-edsr", "tbsrn")


@dataclass(frozen=True)
class SRRecipe:
    """How one SR model is made: architecture and size, loss, data, settings, starting point."""

    model: str  # one of SR_MODELS
    size: str  # a size of that model (`ocrsr_lib.models.model_sizes`)
    loss: str  # a key of LOSSES or TEXT_FOCUS_TERMS
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
        sizes = model_sizes(self.model)
        if self.size not in sizes:
            raise ValueError(f"unknown {self.model} size {self.size!r}; choose from {list(sizes)}")
        if self.loss not in LOSSES and self.loss not in TEXT_FOCUS_TERMS:
            known = sorted([*LOSSES, *TEXT_FOCUS_TERMS])
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {known}")
        if self.data not in DATA:
            raise ValueError(f"unknown data {self.data!r}; choose one of {DATA}")

    @property
    def guided(self) -> bool:
        """Whether the loss needs the guiding recognizer (text-focus and its ablations)."""
        return self.loss in TEXT_FOCUS_TERMS


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


# chapter 7's budget trend: the paper's two SR models, both text stages (MSE, then text-focus)
# trained for this many times the demo's steps (the non-text pretraining is shared)
BUDGET_MULTIPLES: dict[str, tuple[int, ...]] = {"stn-edsr": (1, 4, 16), "tbsrn": (1, 4)}


def budget_name(model: str, multiple: int, text_focus: bool = True) -> str:
    """The recipe of an SR model at a multiple of the demo's budget ("stn-edsr-text-focus-4x";
    the demo's own recipes at 1x)."""
    name = f"{model}-text-focus" if text_focus else model
    return name if multiple == 1 else f"{name}-{multiple}x"


def scaled(train: TrainConfig, multiple: int) -> TrainConfig:
    """The same training for `multiple` times the steps (warm-up and validations scaled too, so
    the schedule's shape and the number of validations stay)."""
    return replace(
        train,
        steps=train.steps * multiple,
        warmup_steps=train.warmup_steps * multiple,
        validate_every=train.validate_every * multiple,
    )


def _demo_budget_recipes(recipes: dict[str, SRRecipe]) -> dict[str, SRRecipe]:
    scaled_recipes = {}
    for model, multiples in BUDGET_MULTIPLES.items():
        first, second = recipes[model], recipes[budget_name(model, 1)]
        for multiple in multiples[1:]:
            first_name = budget_name(model, multiple, text_focus=False)
            scaled_recipes[first_name] = replace(first, train=scaled(first.train, multiple))
            scaled_recipes[budget_name(model, multiple)] = replace(
                second, train=scaled(second.train, multiple), start_from=first_name
            )
    return scaled_recipes


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


_DEMO_RECIPES = _demo_recipes()
SR_RECIPES: dict[str, dict[str, SRRecipe]] = {
    "demo": {**_DEMO_RECIPES, **_demo_budget_recipes(_DEMO_RECIPES)},
    "paper": _paper_recipes(),
}


def build(recipe: SRRecipe) -> nn.Module:
    """The recipe's fresh model; one with an STN runs it at evaluation too (`STN_AT_EVALUATION`:
    training always runs it, so the weights do not depend on it)."""
    if recipe.model in RECTIFIED_MODELS:
        return create_model(recipe.model, recipe.size, stn_at_eval=STN_AT_EVALUATION)
    return create_model(recipe.model, recipe.size)


def sr_architecture(session: Session, name: str) -> str:
    """The SR model a run upscales with: its recipe's model, or the SR part's of a model that
    holds one (a joint run's)."""
    recipe = recipe_for(session, name)
    return getattr(model_sizes(recipe.model)[recipe.size], "sr_model", recipe.model)


def pretraining_data(session: Session) -> str:
    """Which non-text images SR pretraining ("natural" recipes) reads in this session."""
    if session.div2k:
        return f"DIV2K photographs at {session.div2k} (the paper's pretraining data)"
    return "synthetic natural images (offline fallback: no DIV2K folder named, OCRSR_DIV2K)"


def evaluation_identity(session: Session, name: str) -> dict:
    """What decides an SR run's images at evaluation: its weights' key and whether its STN
    runs (part of every cache key of SR images, readings of them, and readers trained on them)."""
    rectified = sr_architecture(session, name) in RECTIFIED_MODELS
    return {"run": run_key(session, name), "stn_at_evaluation": rectified and STN_AT_EVALUATION}


def recipe_data(session: Session, recipe: SRRecipe) -> tuple[Dataset, dict[str, Dataset]]:
    """Training data and validation splits; text validation is held out of the train split;
    non-text pairs are DIV2K crops when the session names a DIV2K folder, else synthetic."""
    if recipe.data == "natural" and session.div2k:
        train = DIV2KPairs(session.div2k, recipe.natural_pairs, seed=session.seed)
        validation = DIV2KPairs(session.div2k, VALIDATION_PAIRS, seed=session.seed + 1)
        return train, {"div2k-validation": validation}
    if recipe.data == "natural":
        train = NaturalImagePairs(recipe.natural_pairs, seed=session.seed)
        validation = NaturalImagePairs(VALIDATION_PAIRS, seed=session.seed + 1)
        return train, {"natural-validation": validation}
    train, validation = text_train_and_validation(session)
    return train, {"validation": validation}


def key_parts(session: Session, recipe: SRRecipe) -> dict:
    """The training data's identity and, for a text-focus loss, the guide's key."""
    if recipe.data == "natural" and session.div2k:
        data = f"{div2k_identity(session.div2k)}:{recipe.natural_pairs}:{session.seed}"
    elif recipe.data == "natural":
        data = f"natural:{recipe.natural_pairs}:{session.seed}"
    else:
        data = text_fingerprint(session)
    return {"data": data, "guide": run_key(session, recipe.guide) if recipe.guided else None}


def loss_for(session: Session, recipe: SRRecipe) -> LossFunction:
    """The recipe's loss; text-focus losses get the trained guide and its confusion weights."""
    if not recipe.guided:
        return LOSSES[recipe.loss]
    guide = trained(session, recipe.guide).model
    table = guide_weight_table(session, recipe.guide, recipe.confusion_strength)
    weights = replace(TEXT_FOCUS_TERMS[recipe.loss], scale=recipe.loss_scale)
    return TextFocusLoss(copy.deepcopy(guide), table, weights).to(session.device)


def fit(session: Session, recipe: SRRecipe, model: nn.Module, checkpoint: Path) -> TrainResult:
    """Train (or resume, or read back) the SR model on its data with its loss."""
    train, validation = recipe_data(session, recipe)
    return train_sr(
        model,
        train,
        loss_for(session, recipe),
        recipe.train,
        checkpoint_path=checkpoint,
        validation=validation,
        device=session.device,
    )


def load_start(model: nn.Module, start: Run) -> None:
    """Copy a starting model's weights in: all of them, or the SR part behind an STN."""
    target = (
        model.sr
        if isinstance(model, RectifiedSR) and not isinstance(start.model, RectifiedSR)
        else model
    )
    load_state_dict_strict(target, start.model.state_dict(), f"start {start.name}")


SR_FAMILY = register_family(Family("sr", SR_RECIPES, build, key_parts, fit, load_start))
