"""Reading words and scoring them: the images a recognizer reads (HR, LR, bicubic or an SR
model's output), word accuracy as TextZoom scores it, size-weighted averages over splits, and
McNemar's paired test of two readers on the same words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ocrsr_lib.labels import normalize_label
from ocrsr_lib.metrics import psnr, ssim, weighted_average
from ocrsr_lib.models import Bicubic, upscale_batch
from ocrsr_lib.progress import progress_bar

IMAGE_SOURCES = ("hr", "lr", "bicubic")


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
        batches = DataLoader(dataset, batch_size=batch_size)
        for lr, hr, batch_labels in progress_bar(batches, desc="reading", leave=False):
            lr, hr = lr.to(device), hr.to(device)
            images = (
                upscale_batch(model, lr)
                if model is not None
                else images_for_reading(lr, hr, source)
            )
            words += recognizer.read(images)
            labels += batch_labels
    finally:
        if model is not None:
            model.train(was_training)
    return words, labels


@torch.no_grad()
def read_image_stack(
    recognizer: nn.Module,
    images: torch.Tensor,
    device: torch.device | str = "cpu",
    batch_size: int = 128,
) -> list[str]:
    """The words `recognizer` (anything with `.read`) reads in a stack of images (N, C, H, W),
    batch by batch, in order."""
    recognizer.to(device)
    return [
        word for batch in images.split(batch_size) for word in recognizer.read(batch.to(device))
    ]


def accuracy_of(words: Sequence[str], labels: Sequence[str]) -> float:
    """Share of words equal to their labels as TextZoom scores (lower case, [0-9a-z] only)."""
    if len(words) != len(labels):
        raise ValueError(f"{len(words)} words read for {len(labels)} labels")
    return sum(w == normalize_label(t) for w, t in zip(words, labels, strict=True)) / max(
        len(words), 1
    )


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
    truth = normalize_label(label)
    return [i < len(truth) and character == truth[i] for i, character in enumerate(word)]


def accuracy_table(
    recognizer: nn.Module,
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


@torch.no_grad()
def sr_quality_and_accuracy(
    model: nn.Module,
    splits: Mapping[str, Dataset],
    recognizers: Mapping[str, nn.Module],
    device: torch.device | str = "cpu",
    batch_size: int = 128,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """What `evaluate_sr` reports (PSNR, SSIM) and each recognizer's `accuracy_table` row for
    one SR model, from a single SR pass over every split (the costly part on a CPU)."""
    was_training = model.training
    model.to(device).eval()
    report: dict[str, dict[str, float]] = {}
    words: dict[str, dict[str, list[str]]] = {name: {} for name in recognizers}
    labels: dict[str, list[str]] = {}
    try:
        for split, dataset in splits.items():
            psnr_values, ssim_values, labels[split] = [], [], []
            for name in recognizers:
                words[name][split] = []
            for lr, hr, batch_labels in DataLoader(dataset, batch_size=batch_size):
                sr_images, hr = upscale_batch(model, lr.to(device)), hr.to(device)
                psnr_values.append(psnr(sr_images.float(), hr).cpu())
                ssim_values.append(ssim(sr_images.float(), hr).cpu())
                for name, recognizer in recognizers.items():
                    words[name][split] += recognizer.to(device).read(sr_images)
                labels[split] += batch_labels
            if not psnr_values:
                raise ValueError("cannot evaluate an empty split")
            report[split] = {
                "psnr": torch.cat(psnr_values).mean().item(),
                "ssim": torch.cat(ssim_values).double().mean().item(),
                "images": len(dataset),
            }
    finally:
        model.train(was_training)
    if len(report) > 1:
        report["average"] = weighted_average(report)
    accuracy = {
        name: with_average({s: accuracy_of(read[s], labels[s]) for s in splits}, splits)
        for name, read in words.items()
    }
    return report, accuracy


def with_average(row: Mapping[str, float], splits: Mapping[str, Dataset]) -> dict[str, float]:
    """A row of per-split accuracies plus their "average", each split weighted by its size."""
    total = sum(len(split) for split in splits.values())
    return {**row, "average": sum(row[s] * len(d) for s, d in splits.items()) / total}
