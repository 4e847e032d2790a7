"""Image and recognition metrics, computed per image so averages never depend on batch size."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset


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


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalised 2-D Gaussian window of TextZoom's SSIM (size x size)."""
    offsets = torch.arange(size, dtype=torch.float64) - size // 2
    line = torch.exp(-(offsets**2) / (2 * sigma**2))
    line = line / line.sum()
    return (line[:, None] @ line[None, :]).float()


def ssim(prediction: torch.Tensor, target: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """Per-image SSIM of RGB images in [0, 1] as TextZoom/TBSRN compute it.

    Gaussian window (11, sigma 1.5) per channel with zero padding, C1 = 0.01^2, C2 = 0.03^2,
    the SSIM map averaged over channels and pixels of each image. A mask channel is ignored.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"shapes differ: {tuple(prediction.shape)} vs {tuple(target.shape)}")
    if prediction.dim() == 3:
        return ssim(prediction[None], target[None], window_size)[0]
    x, y = prediction[:, :3].float(), target[:, :3].float()
    channels = x.shape[1]
    window = gaussian_window(window_size).to(x.device).expand(channels, 1, window_size, window_size)

    def local_mean(image: torch.Tensor) -> torch.Tensor:
        return F.conv2d(image, window, padding=window_size // 2, groups=channels)

    mean_x, mean_y = local_mean(x), local_mean(y)
    variance_x = local_mean(x * x) - mean_x**2
    variance_y = local_mean(y * y) - mean_y**2
    covariance = local_mean(x * y) - mean_x * mean_y
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (variance_x + variance_y + c2)
    )
    return ssim_map.flatten(1).mean(dim=1)


@torch.no_grad()
def evaluate_sr(
    model: torch.nn.Module,
    splits: Mapping[str, Dataset],
    device: torch.device | str = "cpu",
    batch_size: int = 64,
) -> dict[str, dict[str, float]]:
    """Mean PSNR and SSIM per split (per image, SR clamped to [0, 1]), plus a weighted average."""
    was_training = model.training
    model.eval()
    report: dict[str, dict[str, float]] = {}
    for name, dataset in splits.items():
        psnr_values, ssim_values = [], []
        for lr, hr, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
            sr = model(lr.to(device)).float().clamp(0, 1)
            hr = hr.to(device)
            psnr_values.append(psnr(sr, hr).cpu())
            ssim_values.append(ssim(sr, hr).cpu())
        all_psnr, all_ssim = torch.cat(psnr_values), torch.cat(ssim_values)
        report[name] = {
            "psnr": all_psnr.mean().item(),
            "ssim": all_ssim.mean().item(),
            "images": len(all_psnr),
        }
    model.train(was_training)
    if len(report) > 1:
        total = sum(r["images"] for r in report.values())
        report["average"] = {
            key: sum(r[key] * r["images"] for r in report.values()) / total
            for key in ("psnr", "ssim")
        } | {"images": total}
    return report


def format_report(reports: Mapping[str, Mapping[str, Mapping[str, float]]], metric: str) -> str:
    """A plain-text table: one row per model, one column per split, values of `metric`."""
    splits = list(next(iter(reports.values())))
    lines = [f"{'model':24s}" + "".join(f"{s:>10s}" for s in splits)]
    for model_name, report in reports.items():
        lines.append(f"{model_name:24s}" + "".join(f"{report[s][metric]:10.4g}" for s in splits))
    return "\n".join(lines)
