"""Model size as the paper counts it: every quantized parameter at its bit width, every other
parameter at 32 bits. The paper's "MB" column is in megabits (10^6 bits), which is what its
numbers match; the book reports megabytes beside it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

FLOAT_BITS = 32


@dataclass(frozen=True)
class ModelSize:
    """A theoretical size in bits, with the two units it is reported in."""

    bits: int

    @property
    def megabits(self) -> float:
        return self.bits / 1e6

    @property
    def megabytes(self) -> float:
        return self.bits / 8 / 1e6

    def __add__(self, other: ModelSize) -> ModelSize:
        return ModelSize(self.bits + other.bits)


def theoretical_size(model: nn.Module, bit_widths: Mapping[str, int] | None = None) -> ModelSize:
    """Bits of all of a model's parameters: those named in `bit_widths` at their width, the
    rest at 32 (buffers such as batch-norm statistics are not counted, as in the paper)."""
    bit_widths = dict(bit_widths or {})
    names = {name for name, _ in model.named_parameters()}
    unknown = sorted(set(bit_widths) - names)
    if unknown:
        raise KeyError(f"bit widths given for parameters the model does not have: {unknown[:5]}")
    return ModelSize(
        sum(p.numel() * bit_widths.get(name, FLOAT_BITS) for name, p in model.named_parameters())
    )
