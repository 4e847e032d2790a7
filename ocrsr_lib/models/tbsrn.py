"""TBSRN, the text SR network of Scene Text Telescope (Chen et al. 2021), with official names.

Five residual blocks (conv-BN-Mish-conv-BN) each followed by a feature enhancer: self-attention
over all LR positions, whose tokens are the block's features joined with a fixed 2-D sinusoidal
position code. Then PixelShuffle x2, a 9x9 convolution and tanh. The official code runs its STN
in training mode only; `stn_at_eval` makes that a visible choice. Registered as model "tbsrn"
and as the official kind "tbsrn" (Scene Text Telescope's checkpoints).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ocrsr_lib.checkpoints import load_checkpoint, load_state_dict_strict
from ocrsr_lib.models.converting import StateDict, plain_state_dict, strip_prefix, tensor_size
from ocrsr_lib.models.layers import LayerNorm, PositionwiseFeedForward
from ocrsr_lib.models.registry import register_converter, register_model
from ocrsr_lib.models.stn import STN_CONFIGS, SpatialTransformer, STNConfig


@dataclass(frozen=True)
class TBSRNConfig:
    """Residual blocks, feature channels (tokens are twice as wide), attention heads, STN."""

    residual_blocks: int = 5
    channels: int = 64
    heads: int = 4
    attention_dropout: float = 0.1  # official; dropping 1024x1024 maps dominates CPU time
    use_stn: bool = True
    stn_at_eval: bool = False
    stn: STNConfig = STN_CONFIGS["paper"]


TBSRN_CONFIGS = {
    "paper": TBSRNConfig(),
    "demo": TBSRNConfig(
        residual_blocks=1, channels=32, heads=4, attention_dropout=0.0, stn=STN_CONFIGS["demo"]
    ),
}


def positional_encoding_2d(channels: int, height: int, width: int) -> torch.Tensor:
    """(channels, H, W): the first half encodes x, the second half y, in sin/cos pairs."""
    half = channels // 2
    frequencies = torch.exp(torch.arange(0.0, half, 2) * -(math.log(10000.0) / half))
    xs = torch.arange(0.0, width)[:, None] * frequencies  # (W, half/2)
    ys = torch.arange(0.0, height)[:, None] * frequencies
    encoding = torch.zeros(channels, height, width)
    encoding[0:half:2] = torch.sin(xs).T[:, None, :].expand(-1, height, -1)
    encoding[1:half:2] = torch.cos(xs).T[:, None, :].expand(-1, height, -1)
    encoding[half::2] = torch.sin(ys).T[:, :, None].expand(-1, -1, width)
    encoding[half + 1 :: 2] = torch.cos(ys).T[:, :, None].expand(-1, -1, width)
    return encoding


class MultiHeadedAttention(nn.Module):
    """Scaled dot-product attention; linears 0-2 project queries, keys, values, 3 the output."""

    def __init__(self, heads: int, width: int, dropout: float = 0.1) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"token width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.head_width = width // heads
        self.linears = nn.ModuleList([nn.Linear(width, width) for _ in range(4)])
        self.dropout = dropout

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch = tokens.shape[0]
        q, k, v = (
            linear(tokens).view(batch, -1, self.heads, self.head_width).transpose(1, 2)
            for linear in self.linears[:3]
        )
        dropout = self.dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)  # softmax(qk/sqrt d)v
        return self.linears[3](
            attended.transpose(1, 2).reshape(batch, -1, self.heads * self.head_width)
        )


class FeatureEnhancer(nn.Module):
    """Self-attention over every position of the feature map, with the 2-D position code."""

    def __init__(self, channels: int, heads: int, attention_dropout: float = 0.1) -> None:
        super().__init__()
        width = 2 * channels
        self.multihead = MultiHeadedAttention(heads, width, attention_dropout)
        self.mul_layernorm1 = LayerNorm(width)
        self.pff = PositionwiseFeedForward(width, width)
        self.mul_layernorm3 = LayerNorm(width)
        self.linear = nn.Linear(width, channels)
        self._encoding: torch.Tensor | None = None

    def position_code(self, features: torch.Tensor) -> torch.Tensor:
        channels, height, width = features.shape[1:]
        if self._encoding is None or self._encoding.shape != (channels, height, width):
            self._encoding = positional_encoding_2d(channels, height, width)
        return self._encoding.to(features.device, features.dtype)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = features.shape
        code = self.position_code(features).expand(batch, -1, -1, -1)
        tokens = torch.cat([features, code], dim=1).flatten(2).transpose(1, 2)
        tokens = self.mul_layernorm1(tokens + self.multihead(tokens))
        tokens = self.mul_layernorm3(tokens + self.pff(tokens))
        return self.linear(tokens).transpose(1, 2).reshape(batch, channels, height, width)


class RecurrentResidualBlock(nn.Module):
    """x + FeatureEnhancer(BN(conv(Mish(BN(conv(x))))))."""

    def __init__(self, channels: int, heads: int, attention_dropout: float = 0.1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.feature_enhancer = FeatureEnhancer(channels, heads, attention_dropout)
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.mish(self.bn1(self.conv1(x)))))
        return x + self.feature_enhancer(residual)


class UpsampleBlock(nn.Module):
    """conv to 4x channels, PixelShuffle x2, Mish."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, kernel_size=3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.mish(self.pixel_shuffle(self.conv(x)))


class TBSRN(nn.Module):
    """TBSRN x2 on RGB in [0, 1]; blocks are named block1..block{N+3} as in the official code."""

    def __init__(self, config: TBSRNConfig = TBSRN_CONFIGS["demo"]) -> None:
        super().__init__()
        self.config = config
        channels, blocks = config.channels, config.residual_blocks
        self.block1 = nn.Sequential(nn.Conv2d(3, channels, kernel_size=9, padding=4), nn.PReLU())
        for i in range(blocks):
            block = RecurrentResidualBlock(channels, config.heads, config.attention_dropout)
            setattr(self, f"block{i + 2}", block)
        setattr(
            self,
            f"block{blocks + 2}",
            nn.Sequential(
                nn.Conv2d(channels, channels, kernel_size=3, padding=1), nn.BatchNorm2d(channels)
            ),
        )
        setattr(
            self,
            f"block{blocks + 3}",
            nn.Sequential(
                UpsampleBlock(channels), nn.Conv2d(channels, 3, kernel_size=9, padding=4)
            ),
        )
        self.stn = SpatialTransformer(3, config=config.stn) if config.use_stn else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images[:, :3]
        if self.stn is not None and (self.training or self.config.stn_at_eval):
            x = self.stn(x)
        first = self.block1(x)
        features = first
        for i in range(self.config.residual_blocks + 1):
            features = getattr(self, f"block{i + 2}")(features)
        return torch.tanh(
            getattr(self, f"block{self.config.residual_blocks + 3}")(first + features)
        )


def build_tbsrn(config: TBSRNConfig, stn_at_eval: bool = False) -> TBSRN:
    """A fresh TBSRN of this size whose STN runs at evaluation only if `stn_at_eval`."""
    return TBSRN(replace(config, stn_at_eval=stn_at_eval))


# Tensors the official TBSRN builds but never uses in its forward pass.
TBSRN_UNUSED = re.compile(r"^(conv|bn)\.|\.gru[12]\.|\.compress_attention_linear\.")


def tbsrn_from_state_dict(state_dict: StateDict, source: str) -> TBSRN:
    """A TBSRN holding official scene-text-telescope tensors (unused GRU/conv tensors dropped)."""
    state_dict = {
        k: v for k, v in strip_prefix(state_dict, "module.").items() if not TBSRN_UNUSED.search(k)
    }
    channels = tensor_size(state_dict, "block1.0.weight", source)
    blocks = {
        int(m.group(1))
        for k in state_dict
        if (m := re.match(r"^block(\d+)\.feature_enhancer\.", k))
    }
    use_stn = any(k.startswith("stn_head.") for k in state_dict)
    model = TBSRN(TBSRNConfig(residual_blocks=len(blocks), channels=channels, use_stn=use_stn))
    renamed = {
        ("stn." + k if k.startswith(("stn_head.", "tps.")) else k): v for k, v in state_dict.items()
    }
    load_state_dict_strict(model, renamed, source)
    return model


def _load_tbsrn(path: Path) -> TBSRN:
    """An official TBSRN file: the training checkpoint (`state_dict_G`) or a bare state dict."""
    payload = load_checkpoint(path)
    if isinstance(payload, Mapping) and "state_dict_G" in payload:
        payload = payload["state_dict_G"]
    return tbsrn_from_state_dict(plain_state_dict(payload, str(path)), str(path))


register_model("tbsrn", TBSRN_CONFIGS, build_tbsrn)
register_converter("tbsrn", _load_tbsrn)
