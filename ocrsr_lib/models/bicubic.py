"""Bicubic upscaling with the interface of the SR models, so every table has its baseline row."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Bicubic(nn.Module):
    """x2 bicubic interpolation of RGB images in [0, 1]; no parameters, output clamped to [0, 1]."""

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        upscaled = F.interpolate(
            images[:, :3], scale_factor=self.scale, mode="bicubic", align_corners=False
        )
        return upscaled.clamp(0.0, 1.0)
