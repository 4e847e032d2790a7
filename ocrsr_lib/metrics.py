"""Image metrics, computed per image so averages never depend on batch size or order.

PSNR and SSIM follow TextZoom/TBSRN (Scene Text Telescope `utils/ssim_psnr.py`): RGB in [0, 1],
a fourth (mask) channel ignored, PSNR on the 0..255 scale, SSIM with an 11x11 Gaussian window
(sigma 1.5) and zero padding.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ocrsr_lib.models.upscale_batch import upscale_batch


def rgb_pair(prediction: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The RGB channels of two (B, C, H, W) batches, after checking that they can be compared.

    Only batch size and image size must agree, so a 4-channel HR (TSRN mask) meets a 3-channel SR.
    """
    if prediction.dim() != 4 or target.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) tensors, got {tuple(prediction.shape)}")
    same_layout = (
        prediction.shape[0] == target.shape[0] and prediction.shape[2:] == target.shape[2:]
    )
    if not same_layout or min(prediction.shape[1], target.shape[1]) < 3:
        raise ValueError(f"shapes differ: {tuple(prediction.shape)} vs {tuple(target.shape)}")
    return prediction[:, :3], target[:, :3]


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of RGB images in [0, 1], measured on the 0..255 scale (TextZoom).

    Takes (B, C, H, W) or (C, H, W) tensors; only the first three channels count, so a TSRN
    mask channel is ignored. Identical images give +inf.
    """
    if prediction.dim() == 3 and target.dim() == 3:
        return psnr(prediction[None], target[None])[0]
    prediction, target = rgb_pair(prediction, target)
    difference = (prediction.double() - target.double()) * 255.0
    mse = difference.pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(255.0**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalised 2-D Gaussian window of TextZoom's SSIM (size x size)."""
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    line = torch.exp(-(offsets**2) / (2 * sigma**2))
    line = line / line.sum()
    return (line[:, None] @ line[None, :]).float()


def ssim_map(prediction: torch.Tensor, target: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """The local SSIM of each pixel and RGB channel, (B, 3, H, W), as TextZoom/TBSRN compute it.

    Each channel is filtered on its own (grouped convolution) with zero padding of window // 2,
    so pixels near the border see a window that is partly zeros; C1 = 0.01^2, C2 = 0.03^2.
    """
    x, y = (image.float() for image in rgb_pair(prediction, target))
    window = gaussian_window(window_size).to(x.device).expand(3, 1, window_size, window_size)

    def local_mean(image: torch.Tensor) -> torch.Tensor:
        return F.conv2d(image, window, padding=window_size // 2, groups=3)

    mean_x, mean_y = local_mean(x), local_mean(y)
    variance_x = local_mean(x * x) - mean_x**2
    variance_y = local_mean(y * y) - mean_y**2
    covariance = local_mean(x * y) - mean_x * mean_y
    c1, c2 = 0.01**2, 0.03**2
    return ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (variance_x + variance_y + c2)
    )


def ssim(prediction: torch.Tensor, target: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """Per-image SSIM of RGB images in [0, 1]: `ssim_map` averaged over channels and pixels.

    Takes (B, C, H, W) or (C, H, W); identical images give 1. A mask channel is ignored.
    """
    if prediction.dim() == 3 and target.dim() == 3:
        return ssim(prediction[None], target[None], window_size)[0]
    return ssim_map(prediction, target, window_size).flatten(1).mean(dim=1)


def split_metrics(
    model: torch.nn.Module,
    dataset: Dataset,
    device: torch.device | str,
    batch_size: int,
    clamp: bool,
) -> dict[str, float]:
    """Mean PSNR and SSIM of `model` over one split of (lr, hr, label) samples, image by image."""
    psnr_values, ssim_values = [], []
    for lr, hr, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        sr = upscale_batch(model, lr.to(device)).float()
        sr = sr.clamp(0, 1) if clamp else sr
        hr = hr.to(device)
        psnr_values.append(psnr(sr, hr).cpu())
        ssim_values.append(ssim(sr, hr).cpu())
    if not psnr_values:
        raise ValueError("cannot evaluate an empty split")
    return {
        "psnr": torch.cat(psnr_values).mean().item(),
        "ssim": torch.cat(ssim_values).double().mean().item(),
        "images": len(dataset),
    }


def weighted_average(report: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """PSNR and SSIM of several splits averaged with each split weighted by its image count."""
    total = sum(row["images"] for row in report.values())
    average = {
        key: sum(row[key] * row["images"] for row in report.values()) / total
        for key in ("psnr", "ssim")
    }
    return average | {"images": total}


@torch.no_grad()
def evaluate_sr(
    model: torch.nn.Module,
    splits: Mapping[str, Dataset],
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    clamp: bool = False,
) -> dict[str, dict[str, float]]:
    """Mean PSNR and SSIM per split and, for several splits, an image-weighted `average` row.

    The model runs in eval mode (its mode is restored afterwards). `clamp` clips SR to [0, 1]
    first; TextZoom/TBSRN do not, so the default reproduces their numbers.
    """
    was_training = model.training
    model.eval()
    try:
        report = {
            name: split_metrics(model, dataset, device, batch_size, clamp)
            for name, dataset in splits.items()
        }
    finally:
        model.train(was_training)
    if len(report) > 1:
        report["average"] = weighted_average(report)
    return report
