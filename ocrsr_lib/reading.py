"""Training and measuring the guiding recognizer: teacher-forced cross-entropy, word accuracy,
and the character confusions that weight the text-focus loss's content term."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ocrsr_lib.data.labels import normalize_label
from ocrsr_lib.losses import SYMBOLS, confusion_counts, weights_from_confusions
from ocrsr_lib.models import Bicubic
from ocrsr_lib.models.recognizer import (
    INPUT_SIZE,
    TextRecognizer,
    encode_labels,
    to_recognizer_input,
)
from ocrsr_lib.train import BatchLoss

IMAGE_SOURCES = ("hr", "lr", "bicubic")


def guide_label(label: str) -> str:
    """A label as the guide reads it: lower case, digits and letters only."""
    return normalize_label(label)


def recognizer_batch_loss(label_smoothing: float = 0.0) -> BatchLoss:
    """Teacher-forced cross-entropy of the recognizer on the HR images of a TextZoom batch."""

    def batch_loss(network: nn.Module, batch: tuple, device: torch.device) -> torch.Tensor:
        _, hr, labels = batch
        length, decoder_input, targets = encode_labels(labels, device=device)
        output = network(to_recognizer_input(hr.to(device)), length, decoder_input)
        return F.cross_entropy(output.logits, targets, label_smoothing=label_smoothing)

    return batch_loss


def images_for_reading(lr: torch.Tensor, hr: torch.Tensor, source: str | nn.Module) -> torch.Tensor:
    """The images to read: HR, LR (each pixel repeated 2x2, nothing added), bicubic LR or SR."""
    if isinstance(source, nn.Module):
        return source(lr)
    if source == "hr":
        return hr
    if source == "lr":
        return F.interpolate(lr, size=hr.shape[-2:], mode="nearest")
    if source == "bicubic":
        return Bicubic()(lr)
    raise ValueError(f"unknown image source {source!r}; choose one of {IMAGE_SOURCES} or a model")


@torch.no_grad()
def read_split(
    recognizer: nn.Module,
    dataset: Dataset,
    source: str | nn.Module = "hr",
    device: torch.device | str = "cpu",
    batch_size: int = 128,
) -> tuple[list[str], list[str]]:
    """(words read, labels) of a split's `source` images; `recognizer` is anything with
    `.read(images)`: the guide, the judge or CDistNet."""
    recognizer.to(device)
    model = source if isinstance(source, nn.Module) else None
    was_training = model.training if model is not None else False
    if model is not None:
        model.to(device).eval()
    words: list[str] = []
    labels: list[str] = []
    try:
        for lr, hr, batch_labels in DataLoader(dataset, batch_size=batch_size):
            words += recognizer.read(images_for_reading(lr.to(device), hr.to(device), source))
            labels += batch_labels
    finally:
        if model is not None:
            model.train(was_training)
    return words, labels


def accuracy_of(words: Sequence[str], labels: Sequence[str]) -> float:
    """Share of words equal to their labels as TextZoom scores (lower case, [0-9a-z] only)."""
    if len(words) != len(labels):
        raise ValueError(f"{len(words)} words read for {len(labels)} labels")
    return sum(w == guide_label(t) for w, t in zip(words, labels, strict=True)) / max(len(words), 1)


def word_accuracy(
    recognizer: nn.Module,
    dataset: Dataset,
    source: str | nn.Module = "hr",
    device: torch.device | str = "cpu",
    batch_size: int = 128,
) -> float:
    """Share of words read exactly (case and punctuation ignored, as TextZoom scores)."""
    return accuracy_of(*read_split(recognizer, dataset, source, device, batch_size))


def paired_difference(
    first: Sequence[str], second: Sequence[str], labels: Sequence[str]
) -> tuple[int, int, float]:
    """Two readers on the same words: how many only the first reads right, how many only the
    second, and McNemar's z = (a - b) / sqrt(a + b); |z| < 2 is within noise."""
    if not len(first) == len(second) == len(labels):
        raise ValueError(f"{len(first)} and {len(second)} words read for {len(labels)} labels")
    first_right = [accuracy_of([w], [t]) == 1 for w, t in zip(first, labels, strict=True)]
    second_right = [accuracy_of([w], [t]) == 1 for w, t in zip(second, labels, strict=True)]
    only_first = sum(a and not b for a, b in zip(first_right, second_right, strict=True))
    only_second = sum(b and not a for a, b in zip(first_right, second_right, strict=True))
    disagreements = only_first + only_second
    z = (only_first - only_second) / disagreements**0.5 if disagreements else 0.0
    return only_first, only_second, z


def character_marks(word: str, label: str) -> list[bool]:
    """Per character of a word read, whether it equals the label's character at that place
    (the label normalised as TextZoom scores); what Figure 2 colours green or red."""
    truth = guide_label(label)
    return [i < len(truth) and character == truth[i] for i, character in enumerate(word)]


def accuracy_table(
    recognizer: TextRecognizer,
    splits: Mapping[str, Dataset],
    sources: Mapping[str, str | nn.Module],
    device: torch.device | str = "cpu",
) -> dict[str, dict[str, float]]:
    """Word accuracy per image source (rows) and split (columns), with a size-weighted average."""
    table: dict[str, dict[str, float]] = {}
    for name, source in sources.items():
        row = {
            split: word_accuracy(recognizer, data, source, device) for split, data in splits.items()
        }
        table[name] = with_average(row, splits)
    return table


def with_average(row: Mapping[str, float], splits: Mapping[str, Dataset]) -> dict[str, float]:
    """A row of per-split accuracies plus their "average", each split weighted by its size."""
    total = sum(len(split) for split in splits.values())
    return {**row, "average": sum(row[s] * len(d) for s, d in splits.items()) / total}


def format_accuracy(table: Mapping[str, Mapping[str, float]], label: str = "images") -> str:
    """An accuracy table (rows, then columns such as splits) as plain text in percent; a value
    a row lacks (the paper publishes only some) is printed as a dash."""
    columns = list(dict.fromkeys(column for row in table.values() for column in row))
    width = max(len(label), *(len(row) for row in table)) + 2
    lines = [f"{label:{width}s}" + "".join(f"{column:>10s}" for column in columns)]
    for name, row in table.items():
        cells = (f"{100 * row[c]:9.1f}%" if c in row else f"{'-':>10s}" for c in columns)
        lines.append(f"{name:{width}s}" + "".join(cells))
    return "\n".join(lines)


@torch.no_grad()
def attention_maps(
    recognizer: TextRecognizer, images: torch.Tensor, labels: Sequence[str]
) -> torch.Tensor:
    """Where the recognizer looks for each character: (B, T, h, w), heads averaged.

    Teacher-forced as in the loss; position t is the t-th character (the last one is the
    end token). h x w is the encoder's feature grid, a quarter of the 32x128 input.
    """
    length, decoder_input, _ = encode_labels(labels, device=images.device)
    attention = recognizer.eval()(to_recognizer_input(images), length, decoder_input).attention
    positions = attention.shape[-1]
    height = round((positions * INPUT_SIZE[0] / INPUT_SIZE[1]) ** 0.5)
    maps = attention.mean(dim=1)
    return maps.reshape(*maps.shape[:2], height, positions // height)


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
