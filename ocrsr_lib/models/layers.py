"""Blocks shared by the transformer models (TBSRN, its guide, CDistNet), as officially written."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_table(positions: int, width: int) -> torch.Tensor:
    """(positions, width) position code of the official transformers: sin on even channels,
    cos on odd ones, with the same float32 operations, so stored tables compare exactly."""
    position = torch.arange(positions, dtype=torch.float).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, width, 2).float() * (-math.log(10000.0) / width))
    table = torch.zeros(positions, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table


class LayerNorm(nn.Module):
    """The official layer norm: a_2 (x - mean) / (unbiased std + eps) + b_2."""

    def __init__(self, features: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.a_2 = nn.Parameter(torch.ones(features))
        self.b_2 = nn.Parameter(torch.zeros(features))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        return self.a_2 * (x - mean) / (x.std(-1, keepdim=True) + self.eps) + self.b_2


class PositionwiseFeedForward(nn.Module):
    """w_2(dropout(relu(w_1(x)))): the transformer's per-token feed-forward, official names."""

    def __init__(self, width: int, hidden: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.w_1 = nn.Linear(width, hidden)
        self.w_2 = nn.Linear(hidden, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.dropout(F.relu(self.w_1(x))))
