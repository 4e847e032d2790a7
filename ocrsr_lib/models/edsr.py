"""EDSR (Lim et al. 2017) with the layout of EDSR-PyTorch, so its checkpoints load by name.

Takes and returns RGB in [0, 1]. Inside, images are scaled to `rgb_range` (255 for
EDSR-PyTorch weights, 1 for CAR's) and the DIV2K mean is subtracted by a fixed 1x1 convolution,
exactly as the official network does. Registered as model "edsr" and as the official kinds
"edsr" (EDSR-PyTorch files) and "car-edsr" (CAR's).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ocrsr_lib.checkpoints import CheckpointError, load_state_dict_strict
from ocrsr_lib.models.converting import (
    StateDict,
    read_plain_state_dict,
    strip_prefix,
    tensor_size,
)
from ocrsr_lib.models.registry import register_converter, register_model

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


def edsr_config_from_state_dict(
    state_dict: StateDict, rgb_range: float, source: str, residual_scale: float | None = None
) -> EDSRConfig:
    """EDSR size from the tensors: blocks from `body.N.body.0`, features from the head conv.

    The residual scale is not stored: unless given, 0.1 for the 256-feature model and 1 for
    smaller ones, as EDSR-PyTorch trains them.
    """
    features = tensor_size(state_dict, "head.0.weight", source)
    block_pattern = re.compile(r"^body\.(\d+)\.body\.0\.weight$")
    blocks = sorted(int(m.group(1)) for k in state_dict if (m := block_pattern.match(k)))
    if blocks != list(range(len(blocks))):
        raise CheckpointError(f"{source}: residual blocks are not numbered 0..N-1: {blocks}")
    return EDSRConfig(
        residual_blocks=len(blocks),
        features=features,
        residual_scale=residual_scale
        if residual_scale is not None
        else (0.1 if features == 256 else 1.0),
        rgb_range=rgb_range,
    )


def edsr_from_state_dict(
    state_dict: StateDict, rgb_range: float, source: str, residual_scale: float | None = None
) -> EDSR:
    """An EDSR holding these EDSR-PyTorch-layout tensors (mean shift as stored)."""
    model = EDSR(edsr_config_from_state_dict(state_dict, rgb_range, source, residual_scale))
    load_state_dict_strict(model, state_dict, source)
    return model


# the two official EDSR formats, told apart by the value range their stored mean shift is for
# (EDSR-PyTorch: sub_mean.bias = -255 * DIV2K_MEAN; CAR: -1 * DIV2K_MEAN)
EDSR_FORMATS = {"edsr": ("EDSR-PyTorch", 255.0), "car-edsr": ("CAR's EDSR", 1.0)}


def stored_rgb_range(state_dict: StateDict) -> float | None:
    """The value range the stored mean shift subtracts the DIV2K mean at; None when the file has
    no finite 3-channel `sub_mean.bias` to tell (the strict load or finiteness check reports)."""
    bias = state_dict.get("sub_mean.bias")
    if not isinstance(bias, torch.Tensor) or bias.shape != (3,) or not bool(bias.isfinite().all()):
        return None
    return (-bias.double() / torch.tensor(DIV2K_MEAN, dtype=torch.float64)).mean().item()


def require_edsr_format(state_dict: StateDict, kind: str, source: str) -> None:
    """Refuse a file whose mean shift is for another value range than `kind`'s, naming the kind
    it looks like: loading it anyway scales inputs wrongly and gives silently wrong images."""
    name, rgb_range = EDSR_FORMATS[kind]
    stored = stored_rgb_range(state_dict)
    if stored is None or math.isclose(stored, rgb_range, rel_tol=1e-3):
        return
    hint = "".join(
        f"; this looks like {other_name}: load it as kind {other_kind!r}"
        for other_kind, (other_name, other_range) in EDSR_FORMATS.items()
        if math.isclose(stored, other_range, rel_tol=1e-3)
    )
    raise CheckpointError(
        f"{source}: its mean shift (sub_mean.bias) is for inputs in [0, {stored:g}], but kind "
        f"{kind!r} reads {name} files, made for [0, {rgb_range:g}]{hint}"
    )


def read_edsr_state_dict(path: Path, kind: str) -> dict[str, torch.Tensor]:
    """The EDSR tensors of an official file of `kind`, `module.` (DataParallel) keys stripped."""
    state_dict = strip_prefix(read_plain_state_dict(path), "module.")
    require_edsr_format(state_dict, kind, str(path))
    return state_dict


def _load_edsr_pytorch(path: Path, residual_scale: float | None = None) -> EDSR:
    """EDSR-PyTorch files: a bare state dict for inputs in [0, 255]."""
    state_dict = read_edsr_state_dict(path, "edsr")
    return edsr_from_state_dict(state_dict, 255.0, str(path), residual_scale)


def _load_car_edsr(path: Path, residual_scale: float | None = 0.1) -> EDSR:
    """CAR's usn.pth: DataParallel (`module.`) keys, inputs in [0, 1], residual scale 0.1."""
    state_dict = read_edsr_state_dict(path, "car-edsr")
    return edsr_from_state_dict(state_dict, 1.0, str(path), residual_scale)


register_model("edsr", EDSR_CONFIGS, EDSR)
register_converter("edsr", _load_edsr_pytorch)
register_converter("car-edsr", _load_car_edsr)
