"""Runs of Scene Text Telescope's guiding recognizer: the guide, whose attention and reading
steer the text-focus loss, and the judge, the same recipe with another seed, an independent
opinion that never guided SR training. Also their training loss (teacher-forced
cross-entropy on HR words, `recognizer_batch_loss`) and the guide's confusions on LR images
(cached), which weight the loss's content term."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ocrsr_lib.config import Session
from ocrsr_lib.data import session_splits
from ocrsr_lib.evaluation import images_for_reading, word_accuracy
from ocrsr_lib.losses import SYMBOLS, confusion_counts, weights_from_confusions
from ocrsr_lib.models import create_model, model_sizes
from ocrsr_lib.models.guide import TextRecognizer, encode_labels, to_recognizer_input
from ocrsr_lib.runs.core import Family, register_family, run_key, trained
from ocrsr_lib.runs.data import (
    RECOGNIZER_DATA,
    recognizer_fingerprint,
    recognizer_train_and_validation,
)
from ocrsr_lib.train import BatchLoss, TrainConfig, TrainResult, train_model


@dataclass(frozen=True)
class RecognizerRecipe:
    """How a recognizer is made: size, training settings (seed included), label smoothing, and
    the words it learns from (`ocrsr_lib.runs.data.RECOGNIZER_DATA`)."""

    size: str  # a size of the "guide" model (`ocrsr_lib.models.model_sizes`)
    train: TrainConfig
    label_smoothing: float = 0.0
    start_from: str | None = None
    data: str = "text"  # "text": the TextZoom train split; "scene-text": the session's MJ/ST
    model = "guide"  # the registered model (a class attribute: not part of the run's key)

    def __post_init__(self) -> None:
        if self.size not in model_sizes("guide"):
            raise ValueError(f"unknown recognizer size {self.size!r}: {list(model_sizes('guide'))}")
        if self.data not in RECOGNIZER_DATA:
            raise ValueError(f"unknown recognizer data {self.data!r}: {RECOGNIZER_DATA}")


def _recognizer_recipes(size: str, train: TrainConfig, data: str) -> dict[str, RecognizerRecipe]:
    # the judge differs only by its seed (initial weights, batch order)
    return {
        "guide": RecognizerRecipe(size, train, data=data),
        "judge": RecognizerRecipe(size, replace(train, seed=train.seed + 1), data=data),
    }


# measured: on the 5,800 TextZoom training words alone the demo recognizer memorises them
# (training loss 0.005) and reads 85.5 % of the validation words after 6,000 steps; on the
# 100,000 scene-text words it reads 95.0 % of them after the same 6,000 steps
_DEMO_GUIDE = TrainConfig(
    steps=6000,
    batch_size=32,
    learning_rate=1e-3,
    schedule="cosine",
    warmup_steps=200,
    validate_every=1000,
)
_PAPER_GUIDE = TrainConfig(epochs=100, batch_size=64, learning_rate=1e-4, validate_every=2000)
RECOGNIZER_RECIPES: dict[str, dict[str, RecognizerRecipe]] = {
    # the demo's read synthetic scene text, as the paper's CDistNet reads MJSynth + SynthText
    "demo": _recognizer_recipes("demo", _DEMO_GUIDE, "scene-text"),
    # the paper's is normally the official file (`--official guide=...`); trained, it reads
    # TextZoom's words, for which its schedule is sized
    "paper": _recognizer_recipes("paper", _PAPER_GUIDE, "text"),
}


def recognizer_batch_loss(label_smoothing: float = 0.0) -> BatchLoss:
    """Teacher-forced cross-entropy of the recognizer on the HR images of a TextZoom batch."""

    def batch_loss(network: nn.Module, batch: tuple, device: torch.device) -> torch.Tensor:
        _, hr, labels = batch
        length, decoder_input, targets = encode_labels(labels, device=device)
        output = network(to_recognizer_input(hr.to(device)), length, decoder_input)
        return F.cross_entropy(output.logits, targets, label_smoothing=label_smoothing)

    batch_loss.term = "cross-entropy"  # its name in the training history
    return batch_loss


def build(recipe: RecognizerRecipe) -> nn.Module:
    """The recipe's fresh recognizer."""
    return create_model("guide", recipe.size)


def key_parts(session: Session, recipe: RecognizerRecipe) -> dict:
    """The training words' identity: the TextZoom data, the seed that holds words out, and the
    scene text when the recipe reads it."""
    return {"data": recognizer_fingerprint(session, recipe.data)}


def fit(
    session: Session, recipe: RecognizerRecipe, model: nn.Module, checkpoint: Path
) -> TrainResult:
    """Train (or resume, or read back) the recognizer on the HR words of the train split."""
    train, validation = recognizer_train_and_validation(session, recipe.data)

    def validate(trained_model: nn.Module) -> dict:
        device = next(trained_model.parameters()).device
        return {"validation": {"accuracy": word_accuracy(trained_model, validation, "hr", device)}}

    return train_model(
        model,
        train,
        recognizer_batch_loss(recipe.label_smoothing),
        recipe.train,
        checkpoint_path=checkpoint,
        validate=validate,
        device=session.device,
    )


GUIDE_FAMILY = register_family(Family("recognizer", RECOGNIZER_RECIPES, build, key_parts, fit))


@torch.no_grad()
def confusion_weights(
    recognizer: TextRecognizer,
    dataset: Dataset,
    source: str | nn.Module = "bicubic",
    strength: float = 1.0,
    device: torch.device | str = "cpu",
    batch_size: int = 128,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(counts, weight table) from the recognizer's teacher-forced reading of `source` images.

    Each character position is read with the true previous characters given (as the loss
    does), so counts pair every true symbol with the symbol read in its place.
    """
    recognizer.to(device).eval()
    counts = torch.zeros(SYMBOLS, SYMBOLS, dtype=torch.long)
    for lr, hr, labels in DataLoader(dataset, batch_size=batch_size):
        images = images_for_reading(lr.to(device), hr.to(device), source)
        length, decoder_input, targets = encode_labels(labels, device=device)
        logits = recognizer(to_recognizer_input(images), length, decoder_input).logits
        counts += confusion_counts(logits, targets).cpu()
    return counts, weights_from_confusions(counts, strength)


def guide_confusions(session: Session, guide: str) -> torch.Tensor:
    """The guide's confusion counts on bicubic-upscaled LR training images (cached).

    Explained in chapter 3.
    """

    def compute() -> dict:
        recognizer = trained(session, guide).model
        train = session_splits(session)["train"]
        counts, _ = confusion_weights(recognizer, train, "bicubic", device=session.device)
        return {"counts": counts}

    parts = {"guide": run_key(session, guide)}
    return session.cache.get_or_compute("tables", f"confusions-{guide}", parts, compute)["counts"]


def guide_weight_table(session: Session, guide: str, strength: float = 1.0) -> torch.Tensor:
    """The content term's weight table from the guide's confusions on LR images."""
    return weights_from_confusions(guide_confusions(session, guide), strength)
