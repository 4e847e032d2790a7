"""ACIQ's analytic clipping: the clipping value that minimises the expected squared error of
clipping plus rounding for a bell-shaped (Laplace or Gaussian) weight distribution."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

PRIORS = ("laplace", "gaussian")
BITS = range(2, 9)


def fitted_scale(values: torch.Tensor, prior: str) -> torch.Tensor:
    """Per row of `values`, the prior's scale fitted as ACIQ fits it: Laplace b = mean |x - mean|,
    Gaussian sigma = the standard deviation."""
    if prior not in PRIORS:
        raise ValueError(f"unknown prior {prior!r}; choose one of {PRIORS}")
    centred = values - values.mean(dim=-1, keepdim=True)
    return centred.abs().mean(dim=-1) if prior == "laplace" else centred.pow(2).mean(dim=-1).sqrt()


def check_bits(bits: int) -> None:
    """Refuse bit widths outside 2..8, the range the paper and ACIQ cover."""
    if not isinstance(bits, int) or bits not in BITS:
        raise ValueError(f"bits must be an integer from 2 to 8, got {bits!r}")


def rounding_error(alpha: float, bits: int) -> float:
    """Expected squared rounding error of 2^bits uniform levels over [-alpha, alpha]:
    a step of 2 alpha / 2^bits, error uniform within a step, i.e. alpha^2 / (3 * 4^bits)."""
    return alpha**2 / (3 * 4**bits)


def clipping_error(alpha: float, prior: str) -> float:
    """Expected squared error of clipping a unit-scale variable (Laplace b = 1 or Gaussian
    sigma = 1) at +-alpha."""
    if prior == "laplace":
        return 2 * math.exp(-alpha)
    if prior == "gaussian":
        tail = math.erfc(alpha / math.sqrt(2))
        return (alpha**2 + 1) * tail - alpha * math.sqrt(2 / math.pi) * math.exp(-(alpha**2) / 2)
    raise ValueError(f"unknown prior {prior!r}; choose one of {PRIORS}")


def expected_error(alpha: float, bits: int, prior: str) -> float:
    """Clipping plus rounding error, in units of the scale squared (b^2 or sigma^2)."""
    return clipping_error(alpha, prior) + rounding_error(alpha, bits)


def _minimum(function: Callable[[float], float], low: float, high: float) -> float:
    """The minimiser of a unimodal function on [low, high] by golden-section search."""
    ratio = (math.sqrt(5) - 1) / 2
    while high - low > 1e-9:
        left, right = high - ratio * (high - low), low + ratio * (high - low)
        if function(left) < function(right):
            high = right
        else:
            low = left
    return (low + high) / 2


def aciq_alpha(bits: int, prior: str) -> float:
    """The optimal clipping value for `bits` bits, in units of b (Laplace: b = mean |x - mean|)
    or of sigma (Gaussian): the minimiser of `expected_error`.

    Explained in chapter 5.
    """
    check_bits(bits)
    if prior not in PRIORS:
        raise ValueError(f"unknown prior {prior!r}; choose one of {PRIORS}")
    return _minimum(lambda alpha: expected_error(alpha, bits, prior), 0.0, 30.0)
