"""Training memory of a model, counted rather than guessed: float32 weights, their gradients,
Adam's two moments, and the activations autograd keeps for the backward pass of one step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes one training step needs (besides the framework's own workspace)."""

    weights: int
    gradients: int
    optimizer: int  # Adam: first and second moments
    activations: int  # tensors saved for backward, for the batch that was measured

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

    def at_batch(self, measured_batch: int, batch: int) -> TrainingMemory:
        """The same with activations scaled from the measured batch to `batch` (they grow
        linearly with it; weights and optimizer state do not)."""
        activations = round(self.activations * batch / measured_batch)
        return TrainingMemory(self.weights, self.gradients, self.optimizer, activations)


def saved_activation_bytes(forward: Callable[[], torch.Tensor], exclude: set[int]) -> tuple:
    """Bytes of the distinct storages autograd saves while `forward()` runs, leaving out the
    storages in `exclude` (the parameters, which are counted as weights); and its result."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in exclude:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        result = forward()
    return sum(storages.values()), result


def training_memory(
    model: nn.Module, loss: Callable[[], torch.Tensor], backward: bool = False
) -> TrainingMemory:
    """Memory of an Adam training step whose forward pass and loss `loss()` computes; with
    `backward`, the step's backward pass runs too (so that one call can also be timed or have
    its FLOPs counted)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    gradients = sum(p.numel() * p.element_size() for p in trainable)
    exclude = {p.untyped_storage().data_ptr() for p in model.parameters()}
    activations, value = saved_activation_bytes(loss, exclude)
    if backward:
        value.backward()
    return TrainingMemory(weights, gradients, 2 * gradients, activations)
