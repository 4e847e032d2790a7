"""Thin-plate-spline spatial transformer, as TextZoom's TSRN and TBSRN use it (from ASTER).

A small CNN looks at the LR image and predicts where 20 control points (10 along the top, 10
along the bottom edge) should move; a thin-plate spline through them resamples the image.
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CONTROL_POINTS = 20
TPS_MARGINS = (0.05, 0.05)  # where the target control points sit, as a fraction of the image
INIT_MARGIN = 0.01  # where the localization network's initial output puts them


@dataclass(frozen=True)
class STNConfig:
    """Widths of the localization network: six conv-BN-ReLU layers, then a hidden FC layer."""

    conv_widths: tuple[int, ...] = (32, 64, 128, 256, 256, 256)
    hidden: int = 512

    def __post_init__(self) -> None:
        if len(self.conv_widths) != 6:
            raise ValueError(f"the localization network has 6 conv layers, not {self.conv_widths}")


STN_CONFIGS = {
    "paper": STNConfig(),  # TSRN's and TBSRN's (from ASTER)
    # a quarter of the widths: the paper's STN has 12 times the demo EDSR's parameters
    "demo": STNConfig(conv_widths=(16, 32, 64, 64, 64, 64), hidden=128),
}


def float32_geometry(images: torch.Tensor) -> contextlib.AbstractContextManager:
    """Autocast off on the images' device: sampling grids are computed and applied in float32
    under mixed precision (bf16 keeps 8 bits of mantissa, too few for pixel coordinates)."""
    return torch.autocast(images.device.type, enabled=False)


def control_point_grid(count: int, margins: tuple[float, float]) -> torch.Tensor:
    """`count` points in (x, y) in [0, 1]: half along the top edge, half along the bottom."""
    per_side = count // 2
    xs = np.linspace(margins[0], 1.0 - margins[0], per_side)
    top = np.stack([xs, np.full(per_side, margins[1])], axis=1)
    bottom = np.stack([xs, np.full(per_side, 1.0 - margins[1])], axis=1)
    return torch.tensor(np.concatenate([top, bottom]), dtype=torch.float32)


def radial_basis(points: torch.Tensor, control_points: torch.Tensor) -> torch.Tensor:
    """The TPS kernel U(r) = r^2 log r (written 0.5 r^2 log r^2), 0 at r = 0."""
    squared = (points[:, None, :] - control_points[None, :, :]).pow(2).sum(-1)
    values = 0.5 * squared * torch.log(squared)
    return values.masked_fill(torch.isnan(values), 0.0)


class TPSSpatialTransformer(nn.Module):
    """Resample images through the thin-plate spline that maps target to source control points.

    `align_corners=True` is how the official code sampled under the PyTorch 1.2 its weights were
    trained with; PyTorch 1.3 changed grid_sample's default to False.
    """

    def __init__(
        self,
        output_size: tuple[int, int] = (16, 64),
        control_points: int = CONTROL_POINTS,
        margins: tuple[float, float] = TPS_MARGINS,
        align_corners: bool = True,
    ) -> None:
        super().__init__()
        self.output_size = output_size
        self.align_corners = align_corners
        height, width = output_size
        target = control_point_grid(control_points, margins)
        n = control_points
        kernel = torch.zeros(n + 3, n + 3)
        kernel[:n, :n] = radial_basis(target, target)
        kernel[:n, -3] = 1
        kernel[-3, :n] = 1
        kernel[:n, -2:] = target
        kernel[-2:, :n] = target.T
        pixels = torch.tensor(
            list(itertools.product(range(height), range(width))), dtype=torch.float32
        )
        ys, xs = pixels.split(1, dim=1)
        coordinates = torch.cat([xs / (width - 1), ys / (height - 1)], dim=1)
        representation = torch.cat(
            [radial_basis(coordinates, target), torch.ones(height * width, 1), coordinates], dim=1
        )
        self.register_buffer("inverse_kernel", torch.linalg.inv(kernel))
        self.register_buffer("padding_matrix", torch.zeros(3, 2))
        self.register_buffer("target_coordinate_repr", representation)
        self.register_buffer("target_control_points", target)

    def sampling_grid(self, source_control_points: torch.Tensor) -> torch.Tensor:
        """Where each output pixel samples the input, in grid_sample's [-1, 1] coordinates."""
        batch = source_control_points.shape[0]
        padded = torch.cat([source_control_points, self.padding_matrix.expand(batch, 3, 2)], dim=1)
        mapping = self.inverse_kernel @ padded
        source = self.target_coordinate_repr @ mapping
        grid = source.view(batch, *self.output_size, 2).clamp(0, 1)
        return 2.0 * grid - 1.0

    def forward(self, images: torch.Tensor, source_control_points: torch.Tensor) -> torch.Tensor:
        with float32_geometry(images):  # bf16 would move the sample points by pixels
            grid = self.sampling_grid(source_control_points.float())
            return F.grid_sample(
                images.float(),
                grid,
                mode="bilinear",
                padding_mode="zeros",
                align_corners=self.align_corners,
            )


def conv3x3_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class LocalizationNetwork(nn.Module):
    """Six conv-BN-ReLU layers (32..256 at the paper's size) and two FC layers that predict the
    control points.

    The last FC starts with zero weights and its bias on the control-point grid, so the
    transformer begins close to the identity.
    """

    def __init__(
        self,
        in_channels: int = 3,
        control_points: int = CONTROL_POINTS,
        config: STNConfig = STN_CONFIGS["paper"],
    ) -> None:
        super().__init__()
        self.control_points = control_points
        widths = (in_channels, *config.conv_widths)
        layers: list[nn.Module] = []
        for index, (width_in, width_out) in enumerate(itertools.pairwise(widths)):
            layers.append(conv3x3_block(width_in, width_out))
            if index < 4:  # 16x64 -> 1x4, then 1x2: two positions of the last width
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            elif index == 4:
                layers.append(nn.MaxPool2d(kernel_size=(1, 2), stride=(1, 2)))
        self.stn_convnet = nn.Sequential(*layers)
        self.stn_fc1 = nn.Sequential(
            nn.Linear(2 * widths[-1], config.hidden),
            nn.BatchNorm1d(config.hidden),
            nn.ReLU(inplace=True),
        )
        self.stn_fc2 = nn.Linear(config.hidden, control_points * 2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                n = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                module.weight.data.normal_(0, (2.0 / n) ** 0.5)
                module.bias.data.zero_()
            elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
                module.weight.data.fill_(1)
                module.bias.data.zero_()
            elif isinstance(module, nn.Linear):
                module.weight.data.normal_(0, 0.001)
                module.bias.data.zero_()
        self.stn_fc2.weight.data.zero_()
        self.stn_fc2.bias.data = control_point_grid(
            self.control_points, (INIT_MARGIN, INIT_MARGIN)
        ).view(-1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        hidden = 0.1 * self.stn_fc1(self.stn_convnet(images).flatten(1))
        with float32_geometry(images):  # the control points are coordinates: float32
            return self.stn_fc2(hidden.float()).view(-1, self.control_points, 2)


class SpatialTransformer(nn.Module):
    """Localization network plus TPS: rectifies a 16x64 image (RGB, or RGB + mask)."""

    def __init__(
        self,
        in_channels: int = 3,
        output_size: tuple[int, int] = (16, 64),
        config: STNConfig = STN_CONFIGS["paper"],
    ) -> None:
        super().__init__()
        self.stn_head = LocalizationNetwork(in_channels, config=config)
        self.tps = TPSSpatialTransformer(output_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The rectified images, in the input's memory layout (channels-last stays
        channels-last, so the SR network behind runs as fast as without the STN)."""
        rectified = self.tps(images, self.stn_head(images))
        if images.is_contiguous(memory_format=torch.channels_last) and not images.is_contiguous():
            return rectified.contiguous(memory_format=torch.channels_last)
        return rectified
