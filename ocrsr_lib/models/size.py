"""Model size: parameter counts as the papers report them."""

from __future__ import annotations

from torch import nn


def parameter_count(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (frozen ones, such as EDSR's mean shift, included unless asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
