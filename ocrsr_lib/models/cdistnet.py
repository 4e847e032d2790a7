"""CDistNet (Zheng et al.), the recognizer of the paper's pipeline, as its official code builds it.

RGB 32x128 images normalised to x/128 - 1 pass a TPS rectifier (20 control points), a ResNet45
and three transformer encoder layers (the visual branch). The decoder input becomes a semantic
branch (character embeddings) and a positional branch (position codes only); three MDCDP layers
let the position query attend to itself, to the visual and to the semantic features, and fuse
the two results with one gate shared by all layers.

Module and parameter names are the official ones, so official state dicts load strictly. Two
official details matter for exactness: attention projections are 1x1 convolutions chosen by
the kind of attention (self: `conv3`; cross: `conv1` for queries, `conv2` for keys and values),
and attention scores are scaled twice (by 1/head width in total). Parameters the official code
creates but never uses (`in_proj_*`, the other convolutions, `pos_embeding`) are kept, so that
files load strictly and the parameter count is the paper's; they receive no gradient.
Registered as model "cdistnet" and as the official kind "cdistnet".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ocrsr_lib.checkpoints import CheckpointError, load_state_dict_strict, shape_of
from ocrsr_lib.models.converting import (
    StateDict,
    numbered,
    read_plain_state_dict,
    strip_prefix,
    tensor_size,
)
from ocrsr_lib.models.layers import sinusoidal_table
from ocrsr_lib.models.registry import register_converter, register_model
from ocrsr_lib.models.stn import float32_geometry

VOCABULARY = ("<blank>", "<unk>", "<s>", "</s>", *"0123456789", *"abcdefghijklmnopqrstuvwxyz")
PAD, UNKNOWN, START, END = 0, 1, 2, 3
MAX_LABEL_LENGTH = 30  # official labels are cut after 30 characters
MAX_DECODE_STEPS = 49  # the official translator stops after 49 symbols
IMAGE_SIZE = (32, 128)  # (height, width); the TPS grid is fixed to it


@dataclass(frozen=True)
class CDistNetConfig:
    """Widths and depths; the defaults are the official paper configuration (65.5M parameters).

    `backbone_channels` are the stem's and the five ResNet45 stages' output channels; the last
    stage feeds a stride-2 convolution to `width`. `localization_channels` and
    `localization_hidden` size the TPS localization network.
    """

    width: int = 512
    heads: int = 8
    encoder_feed_forward: int = 2048
    decoder_feed_forward: int = 1024
    encoder_layers: int = 3
    decoder_layers: int = 3
    backbone_channels: tuple[int, ...] = (32, 32, 64, 128, 256, 512)
    backbone_blocks: tuple[int, ...] = (3, 4, 6, 6, 3)
    localization_channels: tuple[int, ...] = (64, 128, 256, 512)
    localization_hidden: int = 256
    fiducials: int = 20
    dropout: float = 0.1
    attention_dropout: float = 0.0
    max_positions: int = 5000
    unused_position_embedding: int = 48  # the official `pos_embeding` parameter, never used

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by {self.heads} heads")
        if len(self.backbone_channels) != 6 or len(self.backbone_blocks) != 5:
            raise ValueError("backbone_channels needs 6 widths (stem + 5 stages), blocks 5")
        if len(self.localization_channels) != 4 or self.fiducials % 2:
            raise ValueError("the TPS needs 4 localization widths and an even number of points")


CDISTNET_CONFIGS = {
    "paper": CDistNetConfig(),
    "demo": CDistNetConfig(
        width=128,
        heads=4,
        encoder_feed_forward=256,
        decoder_feed_forward=256,
        backbone_channels=(16, 16, 32, 48, 64, 128),
        backbone_blocks=(1, 1, 1, 1, 1),
        localization_channels=(16, 32, 64, 64),
        localization_hidden=64,
        max_positions=64,
        unused_position_embedding=48,
    ),
}


class PositionalEncoding(nn.Module):
    """x + table[:length] then dropout, on sequence-first (length, B, width) inputs."""

    def __init__(self, width: int, dropout: float, max_positions: int) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        code = sinusoidal_table(max_positions, width).unsqueeze(1)  # (positions, 1, width)
        self.register_buffer("pe", code, persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """`offset`: the position of x's first element (decoding one step at a time)."""
        end = offset + x.shape[0]
        if end > self.pe.shape[0]:
            raise ValueError(
                f"sequence of {end} is longer than the position table ({self.pe.shape[0]}, "
                "CDistNetConfig.max_positions)"
            )
        return self.dropout(x + self.pe[offset:end])


def tps_matrices(fiducials: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The RARE TPS's fixed matrices (inverse of Delta_C, P_hat), in float64, stored as float32.

    Control points: two rows of `fiducials / 2` points at y = -1 and y = +1 spanning x in
    [-1, 1]. P_hat holds, per output pixel centre, [1, x, y, r^2 log(r + 1e-6)] for each point.
    """
    half = fiducials // 2
    xs = np.linspace(-1.0, 1.0, half)
    points = np.concatenate([np.stack([xs, -np.ones(half)], 1), np.stack([xs, np.ones(half)], 1)])
    distance = np.linalg.norm(points[:, None] - points[None], axis=2)
    np.fill_diagonal(distance, 1)
    kernel = distance**2 * np.log(distance)
    delta = np.concatenate(
        [
            np.concatenate([np.ones((fiducials, 1)), points, kernel], 1),
            np.concatenate([np.zeros((2, 3)), points.T], 1),
            np.concatenate([np.zeros((1, 3)), np.ones((1, fiducials))], 1),
        ]
    )
    grid_x = (np.arange(-width, width, 2) + 1.0) / width
    grid_y = (np.arange(-height, height, 2) + 1.0) / height
    pixels = np.stack(np.meshgrid(grid_x, grid_y), axis=2).reshape(-1, 2)
    radius = np.linalg.norm(pixels[:, None] - points[None], axis=2)
    p_hat = np.concatenate(
        [np.ones((len(pixels), 1)), pixels, radius**2 * np.log(radius + 1e-6)], 1
    )
    return torch.tensor(np.linalg.inv(delta)).float(), torch.tensor(p_hat).float()


class LocalizationNetwork(nn.Module):
    """Four conv-BN-ReLU stages (3x3, no bias, 2x2 pooling between) and two FC layers -> points."""

    def __init__(self, config: CDistNetConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for stage, channels in enumerate(config.localization_channels):
            layers += [
                nn.Conv2d(in_channels, channels, 3, 1, 1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(True),
            ]
            layers.append(nn.MaxPool2d(2, 2) if stage < 3 else nn.AdaptiveAvgPool2d(1))
            in_channels = channels
        self.conv = nn.Sequential(*layers)
        hidden = config.localization_hidden
        self.localization_fc1 = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(True))
        self.localization_fc2 = nn.Linear(hidden, 2 * config.fiducials)
        self.fiducials = config.fiducials

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        hidden = self.localization_fc1(self.conv(images).flatten(1))
        with float32_geometry(images):  # the fiducial points are coordinates: float32
            points = self.localization_fc2(hidden.float())
        return points.view(images.shape[0], self.fiducials, 2)


class GridGenerator(nn.Module):
    """Maps predicted control points to a sampling grid through the fixed TPS matrices."""

    def __init__(self, fiducials: int, size: tuple[int, int] = IMAGE_SIZE) -> None:
        super().__init__()
        inverse_delta, p_hat = tps_matrices(fiducials, *size)
        # official files save these two; they are recomputed here (see `cdistnet_from_state_dict`)
        self.register_buffer("inv_delta_C", inverse_delta, persistent=False)
        self.register_buffer("P_hat", p_hat, persistent=False)
        self.size = size

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        batch = points.shape[0]
        padded = torch.cat([points, points.new_zeros(batch, 3, 2)], dim=1)
        transform = torch.bmm(self.inv_delta_C.repeat(batch, 1, 1), padded)
        grid = torch.bmm(self.P_hat.repeat(batch, 1, 1), transform)
        return grid.reshape(batch, *self.size, 2)


class TPS(nn.Module):
    """The RARE thin-plate-spline rectifier: predict 20 points, warp the image to 32x128."""

    def __init__(self, config: CDistNetConfig) -> None:
        super().__init__()
        self.LocalizationNetwork = LocalizationNetwork(config)
        self.GridGenerator = GridGenerator(config.fiducials)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        points = self.LocalizationNetwork(images)
        with float32_geometry(images):  # bf16 would move the sample points by pixels
            grid = self.GridGenerator(points.float())
            return F.grid_sample(images.float(), grid, padding_mode="border", align_corners=True)


class BasicBlock(nn.Module):
    """ABINet's ResNet block: 1x1 conv, 3x3 conv with the stride, both with BN, and a shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = (
            nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )
            if stride != 1 or in_channels != channels
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class ConvBnRelu(nn.Module):
    """The backbone's last 3x3 stride-2 convolution (with bias), batch norm and ReLU."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, channels, 3, 2, 1)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


STAGE_STRIDES = (2, 1, 2, 1, 1)


class ResNet45(nn.Module):
    """Stem and five stages (strides 2, 1, 2, 1, 1), then ConvBnRelu: 32x128 -> 4x16 tokens."""

    def __init__(self, config: CDistNetConfig) -> None:
        super().__init__()
        stem, *stages = config.backbone_channels
        self.conv1 = nn.Conv2d(3, stem, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        in_channels = stem
        for index, (channels, blocks, stride) in enumerate(
            zip(stages, config.backbone_blocks, STAGE_STRIDES, strict=True), start=1
        ):
            layer = [BasicBlock(in_channels, channels, stride)]
            layer += [BasicBlock(channels, channels, 1) for _ in range(blocks - 1)]
            setattr(self, f"layer{index}", nn.Sequential(*layer))
            in_channels = channels
        self.convbnrelu = ConvBnRelu(in_channels, config.width)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Tokens (B, H*W, width), ordered column by column (index = w * H + h) as officially."""
        x = F.relu(self.bn1(self.conv1(images)))
        for index in range(1, 6):
            x = getattr(self, f"layer{index}")(x)
        x = self.convbnrelu(x)
        return x.permute(0, 3, 2, 1).flatten(1, 2)


# what a cross-attention attends to: features (length, B, width), their projected keys and
# values, or nothing (self-attention)
KeysValues = tuple[torch.Tensor, torch.Tensor]
Memory = torch.Tensor | KeysValues | None


def causal_mask(length: int, device: torch.device) -> torch.Tensor:
    """Additive (length, length) mask: 0 on and below the diagonal, -inf above."""
    mask = torch.full((length, length), float("-inf"), device=device)
    return torch.triu(mask, diagonal=1)


def pointwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution applied to the last dimension of x: the linear map it is."""
    return F.linear(x, conv.weight[:, :, 0, 0], conv.bias)


class MultiheadAttention(nn.Module):
    """The official attention: 1x1-convolution projections and scores scaled twice.

    Self-attention projects with `conv3` (q, k, v), cross-attention with `conv1` (q) and
    `conv2` (k, v). `in_proj_weight`/`in_proj_bias` exist only so official files load.
    Inputs are sequence-first, (length, B, width).
    """

    def __init__(self, width: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_width = heads, width // heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = nn.Linear(width, width)
        self.conv1 = nn.Conv2d(width, width, 1)
        self.conv2 = nn.Conv2d(width, 2 * width, 1)
        self.conv3 = nn.Conv2d(width, 3 * width, 1)
        self.dropout = nn.Dropout(dropout)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def memory(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values of a cross-attention memory (computed once when decoding)."""
        return pointwise(self.conv2, memory).chunk(2, dim=-1)

    def forward(
        self,
        query: torch.Tensor,
        memory: Memory = None,
        mask: torch.Tensor | None = None,
        key_padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Self-attention when `memory` is None, else cross-attention to it (or its keys/values)."""
        if memory is None:
            q, k, v = pointwise(self.conv3, query).chunk(3, dim=-1)
        else:
            q = pointwise(self.conv1, query)
            k, v = memory if isinstance(memory, tuple) else self.memory(memory)
        return self.attend(q, k, v, mask, key_padding)

    def self_attention_step(
        self, query: torch.Tensor, past: KeysValues | None, key_padding: torch.Tensor
    ) -> tuple[torch.Tensor, KeysValues]:
        """Causal self-attention of the newest positions `query` (steps, B, width) to every
        position so far: `past` keys and values plus their own (returned for the next step);
        `key_padding` (B, positions so far) marks the PAD inputs, as `forward` masks them."""
        q, k, v = pointwise(self.conv3, query).chunk(3, dim=-1)
        if past is not None:
            k, v = torch.cat([past[0], k]), torch.cat([past[1], v])
        return self.attend(q, k, v, None, key_padding), (k, v)

    def attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None = None,
        key_padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scaled dot-product attention of projected queries to keys and values, all
        sequence-first, then the output projection."""
        length, batch, width = q.shape
        heads, head_width = self.heads, self.head_width
        q = (q * head_width**-0.5).reshape(length, batch * heads, head_width).transpose(0, 1)
        k = k.reshape(k.shape[0], batch * heads, head_width).transpose(0, 1)
        v = v.reshape(v.shape[0], batch * heads, head_width).transpose(0, 1)
        scores = torch.bmm(q, k.transpose(1, 2)) / math.sqrt(head_width)
        if mask is not None:
            scores = scores + mask
        if key_padding is not None:
            scores = scores.view(batch, heads, length, -1)
            scores = scores.masked_fill(key_padding[:, None, None], float("-inf"))
            scores = scores.view(batch * heads, length, -1)
        attended = torch.bmm(self.dropout(scores.softmax(dim=-1)), v)
        return self.out_proj(attended.transpose(0, 1).reshape(length, batch, width))


class EncoderLayer(nn.Module):
    """Post-norm self-attention and a feed-forward of two 1x1 convolutions."""

    def __init__(self, config: CDistNetConfig) -> None:
        super().__init__()
        width = config.width
        self.self_attn = MultiheadAttention(width, config.heads, config.attention_dropout)
        self.conv1 = nn.Conv2d(width, config.encoder_feed_forward, 1)
        self.conv2 = nn.Conv2d(config.encoder_feed_forward, width, 1)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout1(self.self_attn(x)))
        feed_forward = pointwise(self.conv2, F.relu(pointwise(self.conv1, x)))
        return self.norm2(x + self.dropout2(feed_forward))


class TransformerEncoder(nn.Module):
    """The visual encoder layers (and the official, unused `pos_embeding` and `pos_encoding`)."""

    def __init__(self, config: CDistNetConfig) -> None:
        super().__init__()
        shape = (config.unused_position_embedding, 1, config.width)
        self.pos_embeding = nn.Parameter(torch.empty(shape))
        nn.init.xavier_uniform_(self.pos_embeding)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.pos_encoding = PositionalEncoding(config.width, 0.0, config.max_positions)  # unused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class VisualBranch(nn.Module):
    """TPS, ResNet45, position code and encoder: images -> memory (64, B, width)."""

    def __init__(self, config: CDistNetConfig) -> None:
        super().__init__()
        self.transform = TPS(config)
        self.backbone = ResNet45(config)
        self.positional_encoding = PositionalEncoding(
            config.width, config.dropout, config.max_positions
        )
        self.trans_encoder = TransformerEncoder(config)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode(self.transform(images))

    def encode(self, rectified: torch.Tensor) -> torch.Tensor:
        """Memory from images the TPS has already rectified."""
        tokens = self.backbone(rectified).permute(1, 0, 2)
        return self.trans_encoder(self.positional_encoding(tokens))


class Embeddings(nn.Module):
    """Symbol embedding (padding 0) scaled by sqrt(width)."""

    def __init__(self, symbols: int, width: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(symbols, width, padding_idx=PAD)
        self.scale = math.sqrt(width)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids) * self.scale


class SemanticBranch(nn.Module):
    """The characters read so far: embeddings plus position code, (length, B, width)."""

    def __init__(self, config: CDistNetConfig) -> None:
        super().__init__()
        self.embedding = Embeddings(len(VOCABULARY), config.width)
        self.positional_encoding = PositionalEncoding(
            config.width, config.dropout, config.max_positions
        )

    def forward(self, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """`ids` (B, L) at positions offset.. (offset > 0: the next steps of a decoding)."""
        return self.positional_encoding(self.embedding(ids).permute(1, 0, 2), offset)


class PositionalBranch(nn.Module):
    """The position query: the position code alone, through LN(x + MLP(x))."""

    def __init__(self, config: CDistNetConfig) -> None:
        super().__init__()
        width = config.width
        self.pos_encoding = PositionalEncoding(width, config.dropout, config.max_positions)
        self.linear1 = nn.Linear(width, width)
        self.linear2 = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)

    def forward(self, semantic: torch.Tensor, offset: int = 0) -> torch.Tensor:
        positions = self.pos_encoding(torch.zeros_like(semantic), offset)
        return self.norm2(positions + self.linear2(F.relu(self.linear1(positions))))


class AttentionLayer(nn.Module):
    """Post-norm attention (self or cross) followed by a post-norm feed-forward."""

    def __init__(self, config: CDistNetConfig) -> None:
        super().__init__()
        width = config.width
        self.multihead_attn = MultiheadAttention(width, config.heads, config.attention_dropout)
        self.linear1 = nn.Linear(width, config.decoder_feed_forward)
        self.linear2 = nn.Linear(config.decoder_feed_forward, width)
        self.norm2 = nn.LayerNorm(width)
        self.norm3 = nn.LayerNorm(width)
        self.dropout = nn.Dropout(config.attention_dropout)
        self.dropout2 = nn.Dropout(config.dropout)
        self.dropout3 = nn.Dropout(config.dropout)

    def forward(
        self,
        query: torch.Tensor,
        memory: Memory = None,
        mask: torch.Tensor | None = None,
        key_padding: torch.Tensor | None = None,
    ) -> torch.Tensor:
        attended = self.multihead_attn(query, memory, mask, key_padding)
        return self.feed_forward(self.norm2(query + self.dropout2(attended)))

    def self_attention_step(
        self, query: torch.Tensor, past: KeysValues | None, key_padding: torch.Tensor
    ) -> tuple[torch.Tensor, KeysValues]:
        """The layer on the newest positions of a causal self-attention, given the keys and
        values of the earlier ones; returns the output and the keys and values so far."""
        attended, present = self.multihead_attn.self_attention_step(query, past, key_padding)
        return self.feed_forward(self.norm2(query + self.dropout2(attended))), present

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        feed_forward = self.linear2(self.dropout(F.relu(self.linear1(x))))
        return self.norm3(x + self.dropout3(feed_forward))


class DynamicSharedFusion(nn.Module):
    """g = sigmoid(W [visual; semantic]); g * semantic + (1 - g) * visual (the official order)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.w_att = nn.Linear(2 * width, width)

    def forward(self, visual: torch.Tensor, semantic: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.w_att(torch.cat([visual, semantic], dim=-1)))
        return gate * semantic + (1 - gate) * visual


class MDCDP(nn.Module):
    """Per layer: causal self-attention on the position query, cross-attention to the visual
    and (causally) to the semantic features, fused by one gate shared by every layer."""

    def __init__(self, config: CDistNetConfig) -> None:
        super().__init__()
        count = config.decoder_layers
        self.layers_pos = nn.ModuleList(AttentionLayer(config) for _ in range(count))
        self.layers2 = nn.ModuleList(AttentionLayer(config) for _ in range(count))
        self.layers3 = nn.ModuleList(AttentionLayer(config) for _ in range(count))
        self.dynamic_shared_fusion = DynamicSharedFusion(config.width)

    def visual_memory(self, visual: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each layer's keys and values of the visual features, computed once per image."""
        return [layer.multihead_attn.memory(visual) for layer in self.layers2]

    def forward(
        self,
        semantic: torch.Tensor,
        visual: torch.Tensor | list[tuple[torch.Tensor, torch.Tensor]],
        position: torch.Tensor,
        padding: torch.Tensor,
    ) -> torch.Tensor:
        mask = causal_mask(semantic.shape[0], semantic.device)
        for index in range(len(self.layers_pos)):
            position = self.layers_pos[index](position, None, mask, padding)
            memory = visual[index] if isinstance(visual, list) else visual
            with_visual = self.layers2[index](position, memory)
            with_semantic = self.layers3[index](position, semantic, mask, padding)
            position = self.dynamic_shared_fusion(with_visual, with_semantic)
        return position

    def step(
        self,
        semantic: torch.Tensor,
        visual: list[KeysValues],
        position: torch.Tensor,
        cache: DecodeCache,
        beams: int = 1,
    ) -> torch.Tensor:
        """`forward` for the newest positions only, extending `cache` with their keys and values
        (`cache.padding` already marks every position's PAD inputs): every attention over the
        sequence is causal, so the earlier positions' outputs, and their keys and values, do not
        change. With `beams` > 1 the batch holds that many consecutive rows per image and
        `visual` one row per image: the beams of an image query its visual keys and values
        together (cross-attention keeps queries apart)."""
        padding = cache.padding
        for index in range(len(self.layers_pos)):
            position, cache.positions[index] = self.layers_pos[index].self_attention_step(
                position, cache.positions[index], padding
            )
            steps, rows, width = position.shape
            images = rows // beams
            # (steps, images, beams, width) -> (beams, steps, images, width): queries per image
            per_image = position.reshape(steps, images, beams, width).permute(2, 0, 1, 3)
            with_visual = self.layers2[index](
                per_image.reshape(beams * steps, images, width), visual[index]
            )
            with_visual = with_visual.reshape(beams, steps, images, width).permute(1, 2, 0, 3)
            with_visual = with_visual.reshape(steps, rows, width)
            keys, values = self.layers3[index].multihead_attn.memory(semantic)
            if cache.semantic[index] is not None:
                past_keys, past_values = cache.semantic[index]
                keys, values = torch.cat([past_keys, keys]), torch.cat([past_values, values])
            cache.semantic[index] = (keys, values)
            with_semantic = self.layers3[index](position, (keys, values), None, padding)
            position = self.dynamic_shared_fusion(with_visual, with_semantic)
        return position


@dataclass
class DecodeCache:
    """Per MDCDP layer, the keys and values of the positions decoded so far (sequence-first):
    of the position query's self-attention and of the semantic features; `length` positions,
    and which of their inputs were PAD, (rows, length), masked as `CDistNet.decode` masks them."""

    positions: list[KeysValues | None]
    semantic: list[KeysValues | None]
    length: int = 0
    padding: torch.Tensor | None = None

    @classmethod
    def empty(cls, layers: int) -> DecodeCache:
        return cls([None] * layers, [None] * layers)

    def select(self, rows: torch.Tensor) -> DecodeCache:
        """The cache of the batch rows `rows` (in that order): beams kept, images still live."""

        def pick(entry: KeysValues | None) -> KeysValues | None:
            return None if entry is None else (entry[0][:, rows], entry[1][:, rows])

        padding = None if self.padding is None else self.padding[rows]
        return DecodeCache(
            [pick(e) for e in self.positions],
            [pick(e) for e in self.semantic],
            self.length,
            padding,
        )

    def append_inputs(self, ids: torch.Tensor) -> None:
        """Record the newest inputs (rows,): whether each is PAD."""
        newest = ids.eq(PAD)[:, None]
        self.padding = newest if self.padding is None else torch.cat([self.padding, newest], 1)


def rare_initial_points(fiducials: int) -> torch.Tensor:
    """RARE's initial control points (the localization output's bias): a slanted grid."""
    half = fiducials // 2
    xs = np.linspace(-1.0, 1.0, half)
    top = np.stack([xs, np.linspace(0.0, -1.0, half)], axis=1)
    bottom = np.stack([xs, np.linspace(1.0, 0.0, half)], axis=1)
    return torch.tensor(np.concatenate([top, bottom]), dtype=torch.float).flatten()


def to_cdistnet_input(images: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] (B, 3 or 4, H, W) -> CDistNet's input: 32x128, x * 255 / 128 - 1.

    The official loader quantises to 8 bits first; SR outputs are used as they are. A mask
    channel is dropped; other sizes are resized bicubically.
    """
    if images.dim() != 4 or images.shape[1] not in (3, 4):
        raise ValueError(
            f"expected RGB images (B, 3, H, W) or (B, 4, H, W), got {tuple(images.shape)}"
        )
    rgb = images[:, :3]
    if tuple(rgb.shape[-2:]) != IMAGE_SIZE:
        rgb = F.interpolate(rgb, size=IMAGE_SIZE, mode="bicubic", align_corners=False)
    return rgb * (255.0 / 128.0) - 1.0


class CDistNet(nn.Module):
    """CDistNet; `forward(images, tgt)` has the official semantics (see the module docstring).

    `images` are normalised as officially (`to_cdistnet_input`); `tgt` (B, T) starts with <s>
    and is padded with 0. The last position is dropped; the logits (B*(T-1), 40) are the
    official ones, or (B, T-1, 40) with `flat=False`.

    Explained in chapter 4.
    """

    def __init__(self, config: CDistNetConfig = CDISTNET_CONFIGS["demo"]) -> None:
        super().__init__()
        self.config = config
        self.visual_branch = VisualBranch(config)
        self.semantic_branch = SemanticBranch(config)
        self.positional_branch = PositionalBranch(config)
        self.mdcdp = MDCDP(config)
        localization = self.visual_branch.transform.LocalizationNetwork.localization_fc2
        nn.init.zeros_(localization.weight)
        localization.bias.data.copy_(rare_initial_points(config.fiducials))
        for parameter in self.parameters():  # the official global pass, after the module inits
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)
        self.tgt_word_prj = nn.Linear(config.width, len(VOCABULARY), bias=False)
        nn.init.normal_(self.tgt_word_prj.weight, 0.0, config.width**-0.5)

    def decode(
        self,
        visual: torch.Tensor | list[tuple[torch.Tensor, torch.Tensor]],
        ids: torch.Tensor,
    ) -> torch.Tensor:
        """Logits (B, L, 40) for decoder input ids (B, L) against visual memory (or its keys)."""
        semantic = self.semantic_branch(ids)
        position = self.positional_branch(semantic)
        out = self.mdcdp(semantic, visual, position, ids.eq(PAD))
        return self.tgt_word_prj(out.permute(1, 0, 2))

    def decode_step(
        self, visual: list[KeysValues], ids: torch.Tensor, cache: DecodeCache, beams: int = 1
    ) -> torch.Tensor:
        """Logits (B, 40) of the next symbol after decoder inputs whose last ids (B,) are
        `ids`, the earlier ones held by `cache` (extended in place); what `decode` computes at
        the last position, without recomputing the earlier ones. With `beams` > 1, `ids` holds
        that many consecutive rows per image of `visual` (`MDCDP.step`)."""
        semantic = self.semantic_branch(ids[:, None], cache.length)
        position = self.positional_branch(semantic, cache.length)
        cache.append_inputs(ids)
        out = self.mdcdp.step(semantic, visual, position, cache, beams)
        cache.length += 1
        return self.tgt_word_prj(out[-1])

    def read(self, images: torch.Tensor, beam_size: int = 1) -> list[str]:
        """Words read from RGB images in [0, 1] (greedy by default), as `reading` expects."""
        return read_words(self, images, beam_size)

    def forward(self, images: torch.Tensor, tgt: torch.Tensor, flat: bool = True) -> torch.Tensor:
        logits = self.decode(self.visual_branch(images.contiguous()), tgt[:, :-1])
        return logits.reshape(-1, len(VOCABULARY)) if flat else logits

    def forward_rectified(self, rectified: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """The flat logits of images the TPS has already rectified: checks everything after the
        TPS on its own (the float32 TPS grid amplifies rounding, so its output differs between
        machines by more than the rest of the network does)."""
        logits = self.decode(self.visual_branch.encode(rectified.contiguous()), tgt[:, :-1])
        return logits.reshape(-1, len(VOCABULARY))


def encode_targets(
    labels: list[str], device: torch.device | str | None = None, max_length: int = MAX_LABEL_LENGTH
) -> torch.Tensor:
    """(B, T) targets as the official loader makes them: <s>, characters, </s>, 0-padding.

    Labels are filtered to [0-9a-zA-Z], cut at `max_length` and lower-cased.
    """
    rows = []
    for label in labels:
        text = "".join(c for c in str(label) if c.isascii() and c.isalnum())[:max_length].lower()
        rows.append([START, *(VOCABULARY.index(c) for c in text), END])
    width = max(len(row) for row in rows)
    padded = [row + [PAD] * (width - len(row)) for row in rows]
    return torch.tensor(padded, dtype=torch.long, device=device)


def ids_to_text(ids: list[int]) -> str:
    """Symbols of decoded ids, every </s> dropped (as official evaluation does); <blank>, <unk>
    and <s> become '?', which never matches a label character."""
    return "".join(VOCABULARY[i] if i > END else "?" for i in ids if i != END)


@dataclass
class Reading:
    """A decoded word: its ids (without <s>, with </s> when reached), text and log-probability."""

    ids: list[int]
    text: str
    score: float


@torch.no_grad()
def beam_search(
    model: CDistNet,
    images: torch.Tensor,
    beam_size: int = 10,
    max_steps: int = MAX_DECODE_STEPS,
) -> list[Reading]:
    """The official translator's beam search, all images and beams at once.

    Scores are sums of log-probabilities (no length normalisation); an image is done when its
    best candidate of a step is </s>, or after `max_steps` symbols. Beam size 1 is greedy
    decoding. The visual features and their keys and values are computed once, not per step,
    and each step runs the decoder on the newest position only (`CDistNet.decode_step`), with
    the keys and values of the earlier positions cached (the official code recomputes them).
    """
    if beam_size < 1:
        raise ValueError(f"beam size must be at least 1, got {beam_size}")
    was_training = model.training
    model.eval()
    try:
        batch = images.shape[0]
        visual = model.mdcdp.visual_memory(model.visual_branch(images.contiguous()))
        cache = DecodeCache.empty(len(model.mdcdp.layers_pos))
        start = torch.full((batch,), START, dtype=torch.long, device=images.device)
        log_probabilities = model.decode_step(visual, start, cache).log_softmax(dim=-1)
        scores, first = log_probabilities.topk(beam_size, dim=-1)  # (B, K)
        hypotheses = first[:, :, None]  # (B, K, steps)
        finished = first[:, 0] == END
        memory = visual  # one row per live image: its beams query it together
        every = torch.arange(batch, device=images.device)
        cache = cache.select(every.repeat_interleave(beam_size))  # K rows per image
        cached = every  # the images whose rows the cache holds, in order
        final = [None] * batch
        for image in torch.nonzero(finished).flatten().tolist():
            final[image] = (hypotheses[image, 0].tolist(), scores[image, 0].item())
        for _ in range(max_steps - 1):
            live = torch.nonzero(~finished).flatten()
            if live.numel() == 0:
                break
            if len(live) < len(cached):  # some images finished: drop their rows
                kept = torch.searchsorted(cached, live)
                cache = cache.select(_beam_rows(kept, beam_size))
                memory = [(keys[:, kept], values[:, kept]) for keys, values in memory]
            last = hypotheses[live][:, :, -1].flatten()  # (live * K,)
            step = model.decode_step(memory, last, cache, beam_size).log_softmax(dim=-1)
            candidates = scores[live, :, None] + step.view(len(live), beam_size, -1)
            best, index = candidates.flatten(1).topk(beam_size, dim=-1)
            parent, symbol = index // len(VOCABULARY), index % len(VOCABULARY)
            chosen = hypotheses[live].gather(
                1, parent[:, :, None].expand(-1, -1, hypotheses.shape[2])
            )
            grown = torch.cat([chosen, symbol[:, :, None]], dim=2)
            hypotheses = torch.cat([hypotheses, hypotheses.new_zeros(batch, beam_size, 1)], dim=2)
            hypotheses[live] = grown
            scores[live] = best
            order = torch.arange(len(live), device=images.device)[:, None] * beam_size
            cache, cached = cache.select((order + parent).flatten()), live  # each beam's parent
            for row, image in enumerate(live.tolist()):
                if symbol[row, 0].item() == END:
                    finished[image] = True
                    final[image] = (grown[row, 0].tolist(), best[row, 0].item())
        for image in range(batch):
            if final[image] is None:  # ran out of steps: the best hypothesis as it stands
                final[image] = (hypotheses[image, 0].tolist(), scores[image, 0].item())
    finally:
        model.train(was_training)
    return [Reading(ids, ids_to_text(ids), score) for ids, score in final]


def _beam_rows(live: torch.Tensor, beam_size: int) -> torch.Tensor:
    """Rows of the (B*K) batch that belong to the live images, K consecutive rows per image."""
    offsets = torch.arange(beam_size, device=live.device)
    return (live[:, None] * beam_size + offsets).flatten()


def read_words(
    model: CDistNet, images: torch.Tensor, beam_size: int = 1, max_steps: int = MAX_DECODE_STEPS
) -> list[str]:
    """Words read from RGB images in [0, 1]: greedy (beam 1) or beam search."""
    readings = beam_search(model, to_cdistnet_input(images), beam_size, max_steps)
    return [reading.text for reading in readings]


# Buffers official CDistNet files save although they follow from the configuration.
CDISTNET_COMPUTED = re.compile(r"(\.pe|\.inv_delta_C|\.P_hat)$")


def cdistnet_config_from_state_dict(
    state_dict: StateDict, source: str, heads: int = 8
) -> CDistNetConfig:
    """CDistNet size from the tensors; heads are not stored (8 in the official model)."""
    backbone = "visual_branch.backbone."
    localization = "visual_branch.transform.LocalizationNetwork."
    encoder = "visual_branch.trans_encoder."

    def width_of(key: str, dim: int = 0) -> int:
        return tensor_size(state_dict, key, source, dim)

    channels = [width_of(f"{backbone}conv1.weight")]
    blocks = []
    for stage in range(1, 6):
        channels.append(width_of(f"{backbone}layer{stage}.0.conv2.weight"))
        blocks.append(
            numbered(state_dict, rf"^{backbone}layer{stage}\.(\d+)\.conv1\.weight$", source)
        )
    code = state_dict.get("semantic_branch.positional_encoding.pe")
    return CDistNetConfig(
        width=width_of("tgt_word_prj.weight", 1),
        heads=heads,
        encoder_feed_forward=width_of(f"{encoder}layers.0.conv1.weight"),
        decoder_feed_forward=width_of("mdcdp.layers_pos.0.linear1.weight"),
        encoder_layers=numbered(state_dict, rf"^{encoder}layers\.(\d+)\.norm1\.weight$", source),
        decoder_layers=numbered(state_dict, r"^mdcdp\.layers_pos\.(\d+)\.norm2\.weight$", source),
        backbone_channels=tuple(channels),
        backbone_blocks=tuple(blocks),
        localization_channels=tuple(
            width_of(f"{localization}conv.{i}.weight") for i in (0, 4, 8, 12)
        ),
        localization_hidden=width_of(f"{localization}localization_fc1.0.weight"),
        fiducials=width_of(f"{localization}localization_fc2.weight") // 2,
        max_positions=code.shape[0] if code is not None else CDistNetConfig.max_positions,
        unused_position_embedding=width_of(f"{encoder}pos_embeding"),
    )


def cdistnet_from_state_dict(state_dict: StateDict, source: str, heads: int = 8) -> CDistNet:
    """A CDistNet holding official tensors (`module.` tolerated).

    Stored position tables and TPS matrices must equal the ones the model computes (else the
    file was made for another image size or width); missing ones are simply recomputed.

    Explained in chapter 4.
    """
    state_dict = strip_prefix(state_dict, "module.")
    model = CDistNet(cdistnet_config_from_state_dict(state_dict, source, heads))
    computed = dict(model.named_buffers())
    for key in [k for k in state_dict if CDISTNET_COMPUTED.search(k)]:
        stored, ours = state_dict.pop(key), computed.get(key)
        if ours is None or shape_of(stored) != tuple(ours.shape):
            expected = None if ours is None else tuple(ours.shape)
            raise CheckpointError(
                f"{source}: {key!r} {shape_of(stored)} is not expected ({expected})"
            )
        if not torch.allclose(stored.float(), ours, atol=1e-4):
            raise CheckpointError(f"{source}: {key!r} differs from the one the model computes")
    load_state_dict_strict(model, state_dict, source)
    return model


def _load_cdistnet(path: Path, heads: int = 8) -> CDistNet:
    """An official CDistNet checkpoint: a plain state dict (`model.module.state_dict()`)."""
    return cdistnet_from_state_dict(read_plain_state_dict(path), str(path), heads)


# State dict entries the official forward never reads: every `in_proj_*` and `pos_embeding`,
# and the projections of the other kind of attention (self-attention reads `conv3` only, the
# decoders' cross-attention `conv1` and `conv2` only); a test checks them against gradients
CDISTNET_UNUSED = re.compile(
    r"\.in_proj_(weight|bias)$|\.pos_embeding$"
    r"|(trans_encoder\.layers|layers_pos)\.\d+\.(self_attn|multihead_attn)\.conv[12]\."
    r"|layers[23]\.\d+\.multihead_attn\.conv3\."
)

register_model("cdistnet", CDISTNET_CONFIGS, CDistNet, CDISTNET_UNUSED)
register_converter("cdistnet", _load_cdistnet)
