"""Quantizing a whole model by a plan (parameter name -> bit width): a fake-quantized copy,
the stored integers and grids behind it, its theoretical size and its weight error."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from ocrsr_lib.quant.quantizers import QuantizedWeight, QuantSpec, quantize_weight
from ocrsr_lib.quant.size import FLOAT_BITS, ModelSize, theoretical_size


@dataclass
class QuantizedModel:
    """A copy of the model whose planned weights hold their quantized values."""

    model: nn.Module
    weights: dict[str, QuantizedWeight]
    plan: dict[str, int]
    idle: frozenset[str] = frozenset()  # parameters stored but never read by the forward

    def size(self) -> ModelSize:
        """The paper's theoretical size: quantized weights at their stored bit widths (the
        plan's, or per channel after bit allocation), every other parameter at 32 bits."""
        parameters = dict(self.model.named_parameters())
        float_bits = sum(parameters[name].numel() * FLOAT_BITS for name in self.weights)
        stored = sum(weight.stored_bits() for weight in self.weights.values())
        return ModelSize(theoretical_size(self.model).bits - float_bits + stored)

    def idle_size(self) -> ModelSize:
        """The idle parameters' share of `size` (all at 32 bits: a plan never holds them)."""
        parameters = dict(self.model.named_parameters())
        return ModelSize(sum(parameters[name].numel() * FLOAT_BITS for name in self.idle))

    def running_size(self) -> ModelSize:
        """The theoretical size of what runs: `size` less the idle parameters."""
        return ModelSize(self.size().bits - self.idle_size().bits)


def quantize_model(
    model: nn.Module,
    plan: dict[str, int],
    method: str = "aciq-mix",
    granularity: str = "channel",
    bias_correction: bool = False,
    bit_allocation: bool = False,
    idle: Iterable[str] = (),
) -> QuantizedModel:
    """Quantize the planned weights of a copy of `model` (the original is left untouched);
    `idle` names parameters its forward never reads, which a plan may not hold."""
    quantized = copy.deepcopy(model)
    parameters = dict(quantized.named_parameters())
    missing = sorted(set(plan) - set(parameters))
    if missing:
        raise KeyError(f"the plan names parameters the model does not have: {missing[:5]}")
    idle = frozenset(idle)
    unknown, planned_idle = sorted(idle - set(parameters)), sorted(idle & set(plan))
    if unknown:
        raise KeyError(f"idle names parameters the model does not have: {unknown[:5]}")
    if planned_idle:
        raise ValueError(f"the plan quantizes parameters never read: {planned_idle[:5]}")
    weights = {}
    with torch.no_grad():
        for name, bits in plan.items():
            spec = QuantSpec(bits, method, granularity, bias_correction, bit_allocation)
            weights[name] = quantize_weight(parameters[name], spec)
            parameters[name].copy_(weights[name].values().to(parameters[name].dtype))
    return QuantizedModel(quantized, weights, dict(plan), idle)


def weight_error(original: nn.Module, quantized: QuantizedModel) -> float:
    """Mean squared error over all quantized weight values, relative to their mean square
    (so that layers of different scales and models of different sizes compare)."""
    parameters = dict(original.named_parameters())
    error = signal = 0.0
    for name, weight in quantized.weights.items():
        reference = parameters[name].detach().float()
        error += (weight.values() - reference).pow(2).sum().item()
        signal += reference.pow(2).sum().item()
    return error / signal if signal else 0.0
