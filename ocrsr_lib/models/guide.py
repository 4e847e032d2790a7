"""The guide of the text-focus loss: Scene Text Telescope's recognizer (ResNet encoder, one
transformer decoder layer).

It reads 1x32x128 grayscale crops over the 37 symbols `-0123456789abcdefghijklmnopqrstuvwxyz`
('-' starts and ends a word). The text-focus loss runs it with teacher forcing on SR and HR
images and compares the decoder's cross-attention maps and the logits; `attention_maps` shows
those maps per character (heads averaged, on the encoder's feature grid), and `read` decodes
greedily. Module and tensor names follow the official code, so its `pretrain_transformer.pth`
loads with `load_official("tbsrn-recognizer", path)`. Registered as model "guide" and as the
official kind "tbsrn-recognizer".
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ocrsr_lib.checkpoints import CheckpointError, load_state_dict_strict, shape_of
from ocrsr_lib.labels import GUIDE_CHARSET
from ocrsr_lib.models.converting import (
    StateDict,
    read_plain_state_dict,
    require_tensor,
    strip_prefix,
    tensor_size,
)
from ocrsr_lib.models.layers import LayerNorm, PositionwiseFeedForward, sinusoidal_table
from ocrsr_lib.models.registry import register_converter, register_model

ALPHABET = "".join(GUIDE_CHARSET.symbols)
INPUT_SIZE = (32, 128)  # (height, width) of the crops the recognizer was trained on
GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # the official loss's RGB-to-gray weights
READ_MAX_LENGTH = 32  # characters `read` decodes at most (the end token not counted)


@dataclass(frozen=True)
class RecognizerConfig:
    """Encoder widths and depths, decoder width, heads and feed-forward size (official defaults).

    The decoder's tokens are `width` wide: a character embedding and a sinusoidal position
    code of `width // 2` each. The encoder's last convolution also outputs `width` channels.
    """

    stem_channels: tuple[int, int] = (64, 128)
    stage_channels: tuple[int, int, int, int] = (256, 256, 512, 512)
    stage_blocks: tuple[int, int, int, int] = (1, 2, 5, 3)
    width: int = 1024
    heads: int = 16
    feed_forward: int = 2048
    dropout: float = 0.1
    max_positions: int = 5000  # length of the position code table, as in the official code


RECOGNIZER_CONFIGS = {
    "paper": RecognizerConfig(),
    "demo": RecognizerConfig(
        stem_channels=(16, 32),
        stage_channels=(32, 32, 64, 64),
        stage_blocks=(1, 1, 1, 1),
        width=128,
        heads=4,
        feed_forward=256,
        max_positions=64,
    ),
}


class RecognizerOutput(NamedTuple):
    """What the official forward returns (logits, attention, None), with the None filled in.

    `logits` holds each word's first `length` positions, words concatenated (sum(length), 37);
    `attention` the cross-attention probabilities (B, heads, T, H*W); `word_logits` the
    decoder's logits at every position (B, T, 37), the official `test=True` output.
    """

    logits: torch.Tensor
    attention: torch.Tensor
    word_logits: torch.Tensor


def to_recognizer_input(
    images: torch.Tensor, size: tuple[int, int] | None = INPUT_SIZE
) -> torch.Tensor:
    """Grayscale (B, 1, H, W) as the official loss feeds the recognizer: 0.299R+0.587G+0.114B.

    Channels beyond the third (TextZoom's mask) are ignored and one channel is taken as gray.
    Images of another size are resized bicubically to `size` (the official loss never needs
    to: TextZoom's HR and x2 SR images are already 32x128); `size=None` keeps the size.
    """
    if images.dim() != 4 or images.shape[1] not in (1, 3, 4):
        raise ValueError(
            f"expected images of shape (B, 1, H, W), (B, 3, H, W) or (B, 4, H, W), "
            f"got {tuple(images.shape)}"
        )
    if images.shape[1] == 1:
        gray = images
    else:
        r, g, b = images[:, 0:1], images[:, 1:2], images[:, 2:3]
        gray = GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b
    if size is not None and tuple(gray.shape[-2:]) != tuple(size):
        gray = F.interpolate(gray, size=size, mode="bicubic", align_corners=False)
    return gray


def encode_labels(
    labels: Sequence[str],
    device: torch.device | str | None = None,
    max_length: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(length, decoder_input, targets) for teacher forcing, as the official label encoder.

    Labels are normalised (lower-case, [0-9a-z]) and end with '-'. `length` counts the
    characters plus the end token; `decoder_input` (B, max length) is '-' followed by the
    characters, padded with 0 ('-'); `targets` are the characters and '-' of every word,
    concatenated. `max_length` refuses longer labels (characters, end token not counted).
    """
    words = [GUIDE_CHARSET.encode(label, max_length=max_length) for label in labels]
    if not words:
        raise ValueError("no labels to encode")
    length = torch.tensor([len(ids) + 1 for ids in words], dtype=torch.long)
    decoder_input = torch.zeros(len(words), int(length.max()), dtype=torch.long)
    for row, ids in enumerate(words):
        decoder_input[row, : len(ids) + 1] = torch.tensor([GUIDE_CHARSET.start_id, *ids])
    targets = torch.tensor(
        [i for ids in words for i in [*ids, GUIDE_CHARSET.end_id]], dtype=torch.long
    )
    return length.to(device), decoder_input.to(device), targets.to(device)


def word_positions(length: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, steps) mask of the positions that belong to each word (the first `length`)."""
    if length.dim() != 1 or int(length.min()) < 1 or int(length.max()) > steps:
        raise ValueError(
            f"lengths must be a 1-D tensor of values in 1..{steps} (the decoder input's "
            f"length), got {length.tolist()}"
        )
    return torch.arange(steps, device=length.device)[None, :] < length[:, None]


class BasicBlock(nn.Module):
    """relu(x' + BN(conv(relu(BN(conv(x)))))), x' = x or conv-BN of x when widths differ."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = (
            nn.Sequential(
                nn.Conv2d(in_channels, channels, kernel_size=3, padding=1),
                nn.BatchNorm2d(channels),
            )
            if in_channels != channels
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


def conv_bn(in_channels: int, channels: int) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """A 3x3 convolution and its batch norm."""
    return nn.Conv2d(in_channels, channels, kernel_size=3, padding=1), nn.BatchNorm2d(channels)


class ResNet(nn.Module):
    """Two conv stems with 2x2 pooling (32x128 -> 8x32), then four stages of basic blocks.

    Each stage ends in conv-BN-ReLU; the last one (`layer4_conv2`) widens to `width`.
    """

    def __init__(self, config: RecognizerConfig) -> None:
        super().__init__()
        stem1, stem2 = config.stem_channels
        self.conv1, self.bn1 = conv_bn(1, stem1)
        self.conv2, self.bn2 = conv_bn(stem1, stem2)
        in_channels = stem2
        for stage, (channels, blocks) in enumerate(
            zip(config.stage_channels, config.stage_blocks, strict=True), start=1
        ):
            layers = [
                BasicBlock(in_channels if i == 0 else channels, channels) for i in range(blocks)
            ]
            setattr(self, f"layer{stage}", nn.Sequential(*layers))
            out = config.width if stage == 4 else channels
            name = "layer4_conv2" if stage == 4 else f"layer{stage}_conv"
            conv, bn = conv_bn(channels, out)
            setattr(self, name, conv)
            setattr(self, f"{name}_bn" if stage == 4 else f"layer{stage}_bn", bn)
            in_channels = channels

    def stage_end(self, stage: int) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
        """The convolution and batch norm that close a stage."""
        if stage == 4:
            return self.layer4_conv2, self.layer4_conv2_bn
        return getattr(self, f"layer{stage}_conv"), getattr(self, f"layer{stage}_bn")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        for stage in range(1, 5):
            conv, bn = self.stage_end(stage)
            x = F.relu(bn(conv(getattr(self, f"layer{stage}")(x))))
        return x


class Encoder(nn.Module):
    """The ResNet, under the official name `encoder.cnn`."""

    def __init__(self, config: RecognizerConfig) -> None:
        super().__init__()
        self.cnn = ResNet(config)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.cnn(images)


class Attention(nn.Module):
    """Multi-head scaled dot-product attention that also returns its probabilities.

    Dropout acts on the probabilities, and the returned map is the one after dropout, as in
    the official code (in eval mode they are the same).
    """

    def __init__(self, heads: int, width: int, dropout: float) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"decoder width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.head_width = width // heads
        self.linears = nn.ModuleList([nn.Linear(width, width) for _ in range(4)])
        self.dropout = nn.Dropout(dropout)

    def split_heads(self, linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """Project (B, N, width) and split it into heads: (B, heads, N, head width)."""
        return linear(x).view(x.shape[0], -1, self.heads, self.head_width).transpose(1, 2)

    def project_memory(
        self, key: torch.Tensor, value: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected keys and values (a memory attended to at every step can reuse them)."""
        return self.split_heads(self.linears[1], key), self.split_heads(self.linears[2], value)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor | None,
        value: torch.Tensor | None,
        mask: torch.Tensor | None = None,
        projected: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch = query.shape[0]
        q = self.split_heads(self.linears[0], query)
        k, v = projected if projected is not None else self.project_memory(key, value)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_width)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        probabilities = self.dropout(F.softmax(scores, dim=-1))
        attended = (
            (probabilities @ v).transpose(1, 2).reshape(batch, -1, self.heads * self.head_width)
        )
        return self.linears[3](attended), probabilities


class Decoder(nn.Module):
    """One layer: masked self-attention, cross-attention to the image, feed-forward (post-norm)."""

    def __init__(self, config: RecognizerConfig) -> None:
        super().__init__()
        width = config.width
        self.mask_multihead = Attention(config.heads, width, config.dropout)
        self.mul_layernorm1 = LayerNorm(width)
        self.multihead = Attention(config.heads, width, config.dropout)
        self.mul_layernorm2 = LayerNorm(width)
        self.pff = PositionwiseFeedForward(width, config.feed_forward, config.dropout)
        self.mul_layernorm3 = LayerNorm(width)

    def image_memory(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The cross-attention's keys and values of the image features, for repeated decoding."""
        image = features.flatten(2).transpose(1, 2)
        return self.multihead.project_memory(image, image)

    def forward(
        self,
        tokens: torch.Tensor,
        features: torch.Tensor,
        memory: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`memory` (from `image_memory`) saves projecting the same features at every step."""
        steps = tokens.shape[1]
        causal = torch.ones(steps, steps, dtype=torch.bool, device=tokens.device).tril()
        tokens = self.mul_layernorm1(
            tokens + self.mask_multihead(tokens, tokens, tokens, mask=causal)[0]
        )
        image = features.flatten(2).transpose(1, 2)  # (B, H*W, C)
        aligned, attention = self.multihead(tokens, image, image, projected=memory)
        tokens = self.mul_layernorm2(tokens + aligned)
        return self.mul_layernorm3(tokens + self.pff(tokens)), attention


class Embeddings(nn.Module):
    """Character embedding scaled by sqrt(its width)."""

    def __init__(self, width: int, symbols: int) -> None:
        super().__init__()
        self.lut = nn.Embedding(symbols, width)
        self.width = width

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lut(ids) * math.sqrt(self.width)


class PositionalEncoding(nn.Module):
    """The fixed sinusoidal position code with dropout; not saved (it is a formula)."""

    def __init__(self, width: int, dropout: float, max_positions: int) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        code = sinusoidal_table(max_positions, width).unsqueeze(0)  # (1, positions, width)
        self.register_buffer("pe", code, persistent=False)

    def forward(self, batch: int, steps: int) -> torch.Tensor:
        if steps > self.pe.shape[1]:
            raise ValueError(
                f"decoder input of {steps} steps is longer than the position code "
                f"({self.pe.shape[1]}, RecognizerConfig.max_positions)"
            )
        return self.dropout(self.pe[:, :steps].expand(batch, -1, -1))


class Generator(nn.Module):
    """Linear projection of decoder tokens to symbol logits."""

    def __init__(self, width: int, symbols: int) -> None:
        super().__init__()
        self.proj = nn.Linear(width, symbols)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(tokens)


class TextRecognizer(nn.Module):
    """The Scene Text Telescope guiding recognizer on (B, 1, H, W) grayscale in [0, 1]."""

    def __init__(self, config: RecognizerConfig = RECOGNIZER_CONFIGS["demo"]) -> None:
        super().__init__()
        if config.width % 2:
            raise ValueError(f"decoder width {config.width} must be even")
        self.config = config
        symbols = len(ALPHABET)
        self.embedding_word = Embeddings(config.width // 2, symbols)
        self.pe = PositionalEncoding(config.width // 2, config.dropout, config.max_positions)
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
        self.generator_word = Generator(config.width, symbols)
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_uniform_(parameter)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Image features (B, width, H/4, W/4) of grayscale images (B, 1, H, W)."""
        if images.dim() != 4 or images.shape[1] != 1:
            raise ValueError(
                f"the recognizer reads grayscale images (B, 1, H, W), got {tuple(images.shape)}; "
                "convert RGB with to_recognizer_input"
            )
        return self.encoder(images)

    def decoding_memory(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The image's keys and values for the cross-attention, projected once per read."""
        return self.decoder.image_memory(features)

    def decode(
        self,
        features: torch.Tensor,
        decoder_input: torch.Tensor,
        memory: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, 37) and cross-attention (B, heads, T, H*W) for the input symbols."""
        batch, steps = decoder_input.shape
        tokens = torch.cat(
            [self.embedding_word(decoder_input), self.pe(batch, steps).to(features.dtype)], dim=2
        )
        tokens, attention = self.decoder(tokens, features, memory)
        return self.generator_word(tokens), attention

    def forward(
        self, images: torch.Tensor, length: torch.Tensor, decoder_input: torch.Tensor
    ) -> RecognizerOutput:
        """Teacher-forced pass, the official call: see `RecognizerOutput` and `encode_labels`."""
        word_logits, attention = self.decode(self.encode(images), decoder_input)
        logits = word_logits[word_positions(length, decoder_input.shape[1])]
        return RecognizerOutput(logits, attention, word_logits)

    @torch.no_grad()
    def read(self, images: torch.Tensor, max_length: int = READ_MAX_LENGTH) -> list[str]:
        """Greedy decoding of RGB or gray images, the batch at once, in eval mode.

        Starting from '-', each step appends the most likely next symbol to every word that has
        not yet produced '-' (finished words leave the batch, so one long read does not keep the
        others decoding); words are cut at `max_length` characters. The train/eval mode is
        restored.
        """
        was_training = self.training
        self.eval()
        try:
            features = self.encode(to_recognizer_input(images))
            keys, values = self.decoding_memory(features)  # the same at every step
            batch = features.shape[0]
            ids = torch.full((batch, 1), GUIDE_CHARSET.start_id, device=features.device)
            active = torch.arange(batch, device=features.device)  # rows still decoding
            for _ in range(max_length):
                word_logits, _ = self.decode(features, ids[active], (keys, values))
                following = torch.full_like(ids[:, 0], GUIDE_CHARSET.end_id)
                following[active] = word_logits[:, -1].argmax(-1)
                ids = torch.cat([ids, following[:, None]], dim=1)
                going = following[active] != GUIDE_CHARSET.end_id
                if not bool(going.any()):
                    break
                if not bool(going.all()):
                    active = active[going]
                    features, keys, values = features[going], keys[going], values[going]
        finally:
            self.train(was_training)
        return [GUIDE_CHARSET.decode(row[1:].tolist()) for row in ids]


# Tensors of the official guiding recognizer that its forward pass never uses.
RECOGNIZER_UNUSED = re.compile(r"\.compress_attention_linear\.")
RECOGNIZER_POSITION_CODE = "pe.pe"  # a fixed formula; checked against ours, then dropped


def recognizer_config_from_state_dict(
    state_dict: StateDict, source: str, heads: int = 16
) -> RecognizerConfig:
    """Recognizer size from the tensors; heads are not stored (16 in the official model)."""
    cnn = "encoder.cnn."
    stem = tuple(tensor_size(state_dict, f"{cnn}conv{i}.weight", source) for i in (1, 2))
    stage_channels, stage_blocks = [], []
    for stage in range(1, 5):
        stage_channels.append(tensor_size(state_dict, f"{cnn}layer{stage}.0.conv1.weight", source))
        pattern = re.compile(rf"^{re.escape(cnn)}layer{stage}\.(\d+)\.conv1\.weight$")
        blocks = sorted(int(m.group(1)) for k in state_dict if (m := pattern.match(k)))
        if blocks != list(range(len(blocks))):
            raise CheckpointError(
                f"{source}: layer{stage} blocks are not numbered 0..N-1: {blocks}"
            )
        stage_blocks.append(len(blocks))
    code = require_tensor(state_dict, RECOGNIZER_POSITION_CODE, source)
    return RecognizerConfig(
        stem_channels=stem,
        stage_channels=tuple(stage_channels),
        stage_blocks=tuple(stage_blocks),
        width=tensor_size(state_dict, f"{cnn}layer4_conv2.weight", source),
        heads=heads,
        feed_forward=tensor_size(state_dict, "decoder.pff.w_1.weight", source),
        max_positions=code.shape[1] if code.dim() == 3 else RecognizerConfig.max_positions,
    )


def recognizer_from_state_dict(
    state_dict: StateDict, source: str, heads: int = 16
) -> TextRecognizer:
    """A TextRecognizer holding official `pretrain_transformer.pth` tensors (`module.` or not).

    The unused `compress_attention_linear` tensors are dropped; the stored position code must
    equal the one the model computes.
    """
    state_dict = {
        k: v
        for k, v in strip_prefix(state_dict, "module.").items()
        if not RECOGNIZER_UNUSED.search(k)
    }
    model = TextRecognizer(recognizer_config_from_state_dict(state_dict, source, heads))
    stored = state_dict.pop(RECOGNIZER_POSITION_CODE)
    ours = model.pe.pe
    if shape_of(stored) != tuple(ours.shape) or not torch.allclose(
        stored.to(ours.dtype), ours, atol=1e-4
    ):
        raise CheckpointError(
            f"{source}: {RECOGNIZER_POSITION_CODE!r} {shape_of(stored)} is not the sinusoidal "
            f"position code {tuple(ours.shape)} the recognizer computes"
        )
    load_state_dict_strict(model, state_dict, source)
    return model


def _load_tbsrn_recognizer(path: Path, heads: int = 16) -> TextRecognizer:
    """`pretrain_transformer.pth`: the DataParallel state dict of the guiding recognizer."""
    return recognizer_from_state_dict(read_plain_state_dict(path), str(path), heads)


register_model("guide", RECOGNIZER_CONFIGS, TextRecognizer)
register_converter("tbsrn-recognizer", _load_tbsrn_recognizer)


@torch.no_grad()
def attention_maps(
    recognizer: TextRecognizer, images: torch.Tensor, labels: Sequence[str]
) -> torch.Tensor:
    """Where the recognizer looks for each character: (B, T, h, w), heads averaged.

    Teacher-forced as in the loss; position t is the t-th character (the last one is the
    end token). h x w is the encoder's feature grid, a quarter of the 32x128 input.

    Explained in chapter 3.
    """
    length, decoder_input, _ = encode_labels(labels, device=images.device)
    attention = recognizer.eval()(to_recognizer_input(images), length, decoder_input).attention
    positions = attention.shape[-1]
    height = round((positions * INPUT_SIZE[0] / INPUT_SIZE[1]) ** 0.5)
    maps = attention.mean(dim=1)
    return maps.reshape(*maps.shape[:2], height, positions // height)
