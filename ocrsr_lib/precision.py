"""bf16 autocast against float32: how much the SR images, CDistNet's logits and its readings
change on the same batches, so that a mixed-precision run is known to compute the same thing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ocrsr_lib.config import Session
from ocrsr_lib.data import first_items, scoring_splits
from ocrsr_lib.evaluation import accuracy_of
from ocrsr_lib.metrics import psnr
from ocrsr_lib.models.cdistnet import CDistNet, encode_targets, to_cdistnet_input


def hard_batches(
    session: Session, words: int, batch: int
) -> list[tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]]:
    """The first `words` scored hard test pairs as (LR, HR, labels) batches of `batch`."""
    hard = first_items(scoring_splits(session)["hard"], words)
    batches = []
    for start in range(0, len(hard), batch):
        items = [hard[i] for i in range(start, min(start + batch, len(hard)))]
        lr, hr, labels = zip(*items, strict=True)
        batches.append((torch.stack(lr), torch.stack(hr), labels))
    return batches


def bf16_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on the device's type (CUDA, or the CPU's own bf16 autocast)."""
    return torch.autocast(device.type, dtype=torch.bfloat16)


def in_both_precisions(
    compute: Callable[[], torch.Tensor], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """`compute()` in float32 and under bf16 autocast, both returned as float32."""
    with torch.no_grad():
        reference = compute().float()
        with bf16_autocast(device):
            mixed = compute().float()
    return reference, mixed


def relative_rms(reference: torch.Tensor, other: torch.Tensor) -> float:
    """RMS of the difference over RMS of the reference (0 when identical)."""
    scale = reference.pow(2).mean().sqrt().clamp_min(1e-12)
    return ((other - reference).pow(2).mean().sqrt() / scale).item()


@dataclass(frozen=True)
class PrecisionReport:
    """float32 against bf16 autocast on the same LR batches."""

    images: int
    sr_relative_rms: float  # SR output
    sr_max_abs: float  # largest pixel difference, in [0, 1] units
    psnr_float32: float  # SR output against HR, dB
    psnr_bf16: float
    logits_relative_rms: float  # CDistNet logits (teacher-forced on the labels)
    readings_agree: float  # share of words read identically (greedy)
    accuracy_float32: float  # greedy word accuracy
    accuracy_bf16: float

    def lines(self) -> list[str]:
        return [
            f"images compared: {self.images}",
            f"SR output: relative RMS difference {self.sr_relative_rms:.2e}, "
            f"largest pixel difference {self.sr_max_abs:.2e}",
            f"PSNR against HR: float32 {self.psnr_float32:.3f} dB, bf16 {self.psnr_bf16:.3f} dB",
            f"CDistNet logits: relative RMS difference {self.logits_relative_rms:.2e}",
            f"greedy readings identical: {100 * self.readings_agree:.1f}%; word accuracy "
            f"float32 {100 * self.accuracy_float32:.1f}%, bf16 {100 * self.accuracy_bf16:.1f}%",
        ]


def compare_precisions(
    sr_model: nn.Module,
    ocr_model: CDistNet,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor, Sequence[str]]],
    device: torch.device,
) -> PrecisionReport:
    """Run SR and CDistNet on (LR, HR, labels) batches in float32 and in bf16 autocast."""
    sr_model, ocr_model = sr_model.to(device).eval(), ocr_model.to(device).eval()
    sr_pairs, hr_all, logit_pairs = [], [], []
    words: dict[str, list[str]] = {"float32": [], "bf16": [], "labels": []}
    for lr, hr, labels in batches:
        lr, hr = lr.to(device), hr.to(device)
        sr32, sr16 = in_both_precisions(lambda lr=lr: sr_model(lr), device)
        sr_pairs.append((sr32, sr16.clamp(0, 1)))
        hr_all.append(hr)
        inputs = (to_cdistnet_input(sr32), encode_targets(list(labels), device=device))
        logit_pairs.append(in_both_precisions(lambda inputs=inputs: ocr_model(*inputs), device))
        with torch.no_grad():
            words["float32"] += ocr_model.read(sr32)
            with bf16_autocast(device):
                words["bf16"] += ocr_model.read(sr32)
        words["labels"] += labels
    sr32 = torch.cat([a for a, _ in sr_pairs])
    sr16 = torch.cat([b for _, b in sr_pairs])
    hr = torch.cat(hr_all)
    same = sum(a == b for a, b in zip(words["float32"], words["bf16"], strict=True))
    return PrecisionReport(
        images=len(words["labels"]),
        sr_relative_rms=relative_rms(sr32, sr16),
        sr_max_abs=(sr16 - sr32).abs().max().item(),
        psnr_float32=psnr(sr32.clamp(0, 1), hr).mean().item(),
        psnr_bf16=psnr(sr16, hr).mean().item(),
        logits_relative_rms=relative_rms(
            torch.cat([a for a, _ in logit_pairs]), torch.cat([b for _, b in logit_pairs])
        ),
        readings_agree=same / len(words["labels"]),
        accuracy_float32=accuracy_of(words["float32"], words["labels"]),
        accuracy_bf16=accuracy_of(words["bf16"], words["labels"]),
    )
