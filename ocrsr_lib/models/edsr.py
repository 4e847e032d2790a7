"""EDSR (Lim et al. 2017) with the layout of EDSR-PyTorch, so its checkpoints load by name.

Takes and returns RGB in [0, 1]. Inside, images are scaled to `rgb_range` (255 for
EDSR-PyTorch weights, 1 for CAR's) and the DIV2K mean is subtracted by a fixed 1x1 convolution,
exactly as the official network does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


@dataclass(frozen=True)
class EDSRConfig:
    """Size of an EDSR: residual blocks, feature channels, residual scaling, value range."""

    residual_blocks: int
    features: int
    residual_scale: float
    rgb_range: float = 1.0
    scale: int = 2


EDSR_CONFIGS = {
    "paper": EDSRConfig(residual_blocks=32, features=256, residual_scale=0.1),
    "baseline": EDSRConfig(residual_blocks=16, features=64, residual_scale=1.0),
    "demo": EDSRConfig(residual_blocks=6, features=32, residual_scale=1.0),
}


class MeanShift(nn.Conv2d):
    """A frozen 1x1 convolution that adds (sign=+1) or subtracts (sign=-1) the RGB mean."""

    def __init__(self, rgb_range: float, sign: int, mean: tuple[float, ...] = DIV2K_MEAN) -> None:
        super().__init__(3, 3, kernel_size=1)
        with torch.no_grad():
            self.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.bias.copy_(sign * rgb_range * torch.tensor(mean))
        for parameter in self.parameters():
            parameter.requires_grad = False


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)


class ResidualBlock(nn.Module):
    """conv-ReLU-conv, scaled by `residual_scale`, plus the input (no batch norm, as in EDSR)."""

    def __init__(self, features: int, residual_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(features, features), nn.ReLU(True), conv3x3(features, features)
        )
        self.residual_scale = residual_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.residual_scale


class EDSR(nn.Module):
    """EDSR x2: head conv, residual body with a long skip, sub-pixel (PixelShuffle) upsampling."""

    def __init__(self, config: EDSRConfig = EDSR_CONFIGS["demo"]) -> None:
        super().__init__()
        if config.scale != 2:
            raise ValueError(f"only x2 is implemented (the paper's setting), not x{config.scale}")
        self.config = config
        features = config.features
        self.sub_mean = MeanShift(config.rgb_range, sign=-1)
        self.add_mean = MeanShift(config.rgb_range, sign=1)
        self.head = nn.Sequential(conv3x3(3, features))
        blocks = [
            ResidualBlock(features, config.residual_scale) for _ in range(config.residual_blocks)
        ]
        self.body = nn.Sequential(*blocks, conv3x3(features, features))
        upsampler = nn.Sequential(conv3x3(features, 4 * features), nn.PixelShuffle(2))
        self.tail = nn.Sequential(upsampler, conv3x3(features, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.sub_mean(images[:, :3] * self.config.rgb_range)
        x = self.head(x)
        x = self.tail(self.body(x) + x)
        return self.add_mean(x) / self.config.rgb_range
