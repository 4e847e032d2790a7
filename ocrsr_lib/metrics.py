"""Image and recognition metrics, computed per image so averages never depend on batch size."""

from __future__ import annotations

import torch


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of RGB images in [0, 1], measured on the 0..255 scale (TextZoom).

    Takes (B, C, H, W) or (C, H, W) tensors; only the first three channels count, so a TSRN
    mask channel is ignored. Identical images give +inf.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(prediction.shape)} vs {tuple(target.shape)}")
    if prediction.dim() == 3:
        return psnr(prediction[None], target[None])[0]
    difference = (prediction[:, :3].double() - target[:, :3].double()) * 255.0
    mse = difference.pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(255.0**2 / mse)
