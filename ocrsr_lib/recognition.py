"""Training CDistNet on TextZoom-style batches: the official label-smoothed loss and the batch
loss on HR, bicubic or super-resolved images."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.transforms import v2

from ocrsr_lib.augment import augment_batch
from ocrsr_lib.models.cdistnet import PAD, encode_targets, to_cdistnet_input
from ocrsr_lib.reading import images_for_reading
from ocrsr_lib.train import BatchLoss


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

    return batch_loss
