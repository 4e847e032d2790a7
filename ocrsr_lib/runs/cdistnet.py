"""CDistNet runs: pretraining on HR words (the paper profile: MJSynth + SynthText), then the
paper's second stage, fine-tuning on the images a pipeline will feed it (HR, bicubic, or an SR
recipe's output, the SR model fixed). A fine-tune's key includes the SR run whose images it
reads, so a retrained SR model never meets a stale reader.

Also CDistNet's training loss: the official label-smoothed cross-entropy
(`label_smoothed_cross_entropy`) of the network reading a batch's chosen images
(`cdistnet_batch_loss`, with optional augmentation)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torchvision.transforms import v2

from ocrsr_lib.augment import augment_batch, augmentation
from ocrsr_lib.config import Session
from ocrsr_lib.evaluation import IMAGE_SOURCES, images_for_reading, word_accuracy
from ocrsr_lib.models import create_model, model_sizes
from ocrsr_lib.models.cdistnet import PAD, encode_targets, to_cdistnet_input
from ocrsr_lib.runs.core import Family, register_family, trained
from ocrsr_lib.runs.data import (
    RECOGNIZER_DATA,
    recognizer_fingerprint,
    recognizer_train_and_validation,
)
from ocrsr_lib.runs.sr import evaluation_identity
from ocrsr_lib.train import BatchLoss, TrainConfig, TrainResult, train_model


@dataclass(frozen=True)
class CDistNetRecipe:
    """Size, training settings, the images it reads, and the run it starts from."""

    size: str  # a size of the "cdistnet" model (`ocrsr_lib.models.model_sizes`)
    train: TrainConfig
    images: str = "hr"  # "hr", "bicubic", "lr" or the name of an SR recipe
    start_from: str | None = None  # another CDistNet recipe
    augment: bool = True
    smoothing: float = 0.1
    data: str = "text"  # "text": the TextZoom train split; "scene-text": the session's MJ/ST
    model = "cdistnet"  # the registered model (a class attribute: not part of the run's key)

    def __post_init__(self) -> None:
        if self.size not in model_sizes("cdistnet"):
            raise ValueError(
                f"unknown CDistNet size {self.size!r}: {list(model_sizes('cdistnet'))}"
            )
        if self.data not in RECOGNIZER_DATA:
            raise ValueError(f"unknown CDistNet data {self.data!r}: {RECOGNIZER_DATA}")
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
    # measured on the 5,800 TextZoom training words alone, at a constant 3e-4: the attention
    # stays flat (accuracy ~0.5%) for about 4000 steps, then aligns; 8000 steps reach ~65% on
    # the held-out HR words and still rising. So the demo pretrains, like the paper, on many
    # more words (synthetic scene text), for twice as long, decaying at the end
    pretrain = TrainConfig(
        steps=16000,
        batch_size=32,
        learning_rate=3e-4,
        schedule="cosine",
        warmup_steps=200,
        validate_every=1000,
        **_OFFICIAL,
    )
    # fine-tuning adapts an already aligned reader to its images: short, decaying to zero
    fine_tune = replace(
        pretrain, steps=1000, schedule="cosine", warmup_steps=50, validate_every=250
    )
    pretraining = CDistNetRecipe("demo", pretrain, augment=False, data="scene-text")
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


def label_smoothed_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, smoothing: float = 0.1
) -> torch.Tensor:
    """CDistNet's loss: target 1 - eps, every other symbol eps / (symbols - 1), padding included
    among the others; averaged over the non-padding targets. Not PyTorch's label_smoothing
    (which spreads eps over all symbols, the target too)."""
    if logits.dim() != 2 or logits.shape[0] != targets.numel():
        raise ValueError(
            f"logits (N, symbols) and targets (N,) disagree: {tuple(logits.shape)} vs "
            f"{tuple(targets.shape)}"
        )
    targets = targets.reshape(-1)
    symbols = logits.shape[1]
    wanted = torch.full_like(logits, smoothing / (symbols - 1))
    wanted.scatter_(1, targets[:, None], 1 - smoothing)
    per_position = -(wanted * logits.log_softmax(dim=1)).sum(dim=1)
    keep = targets != PAD
    return per_position[keep].mean()


def cdistnet_batch_loss(
    source: str | nn.Module = "hr", smoothing: float = 0.1, augment: v2.Transform | None = None
) -> BatchLoss:
    """Loss of CDistNet reading one image source of a TextZoom batch (LR, HR, labels).

    `source` is "hr", "bicubic", "lr" or a frozen SR model whose outputs are computed without
    gradient (the paper's second stage: the SR model is fixed while CDistNet fine-tunes).
    `augment` (see `ocrsr_lib.augment`) changes the images while the network trains.
    """

    def batch_loss(network: nn.Module, batch: tuple, device: torch.device) -> torch.Tensor:
        lr, hr, labels = batch
        if isinstance(source, nn.Module):
            source.to(device).eval()
        with torch.no_grad():
            images = images_for_reading(lr.to(device), hr.to(device), source)[:, :3]
            if augment is not None and network.training:
                images = augment_batch(images, augment)
        targets = encode_targets(list(labels), device=device)
        logits = network(to_cdistnet_input(images), targets)
        return label_smoothed_cross_entropy(logits, targets[:, 1:], smoothing)

    batch_loss.term = "smoothed cross-entropy"  # its name in the training history
    return batch_loss


def build(recipe: CDistNetRecipe) -> nn.Module:
    """The recipe's fresh CDistNet."""
    return create_model("cdistnet", recipe.size)


def key_parts(session: Session, recipe: CDistNetRecipe) -> dict:
    """The training words' identity (TextZoom, plus any scene-text roots), the key of the SR
    run whose images it reads and whether that run's STN rectifies them."""
    parts = {"data": recognizer_fingerprint(session, recipe.data), "images": None}
    if recipe.images not in IMAGE_SOURCES:
        identity = evaluation_identity(session, recipe.images)
        parts["images"] = identity["run"]
        if identity["stn_at_evaluation"]:  # images rectified by the STN: other images
            parts["stn_at_evaluation"] = True
    return parts


def image_source(session: Session, images: str) -> str | nn.Module:
    """ "hr", "bicubic" or "lr" as they are; an SR recipe name becomes its trained model."""
    return images if images in IMAGE_SOURCES else trained(session, images).model


def fit(
    session: Session, recipe: CDistNetRecipe, model: nn.Module, checkpoint: Path
) -> TrainResult:
    """Train (or resume, or read back) CDistNet reading the recipe's images."""
    source = image_source(session, recipe.images)
    train, validation = recognizer_train_and_validation(session, recipe.data)

    def validate(trained_model: nn.Module) -> dict:
        device = next(trained_model.parameters()).device
        return {
            "validation": {"accuracy": word_accuracy(trained_model, validation, source, device)}
        }

    augment = augmentation() if recipe.augment else None
    return train_model(
        model,
        train,
        cdistnet_batch_loss(source, recipe.smoothing, augment),
        recipe.train,
        checkpoint_path=checkpoint,
        validate=validate,
        device=session.device,
    )


CDISTNET_FAMILY = register_family(Family("cdistnet", CDISTNET_RECIPES, build, key_parts, fit))
