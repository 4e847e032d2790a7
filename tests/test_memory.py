"""Counted training memory: weights, gradients, Adam state and saved activations."""

import torch
from torch import nn

from ocrsr_lib.memory import TrainingMemory, training_memory


def test_a_linear_layer_saves_its_input_and_counts_its_parameters():
    layer = nn.Linear(100, 50)
    inputs = torch.randn(8, 100)
    memory = training_memory(layer, lambda: layer(inputs).sum())
    parameters = (100 * 50 + 50) * 4
    assert memory.weights == memory.gradients == parameters
    assert memory.optimizer == 2 * parameters
    assert memory.activations == 8 * 100 * 4  # the input, kept for the weight gradient


def test_frozen_parameters_have_no_gradient_or_optimizer_state():
    model = nn.Sequential(nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 10))
    model[0].requires_grad_(False)
    memory = training_memory(model, lambda: model(torch.randn(4, 10)).sum())
    assert memory.weights == 2 * 110 * 4 and memory.gradients == 110 * 4
    assert memory.activations > 0


def test_activations_scale_with_the_batch_and_the_rest_does_not():
    memory = TrainingMemory(weights=400, gradients=400, optimizer=800, activations=1000)
    larger = memory.at_batch(4, 32)
    assert larger.activations == 8000 and larger.weights == 400 and larger.optimizer == 800
    assert larger.total == 400 + 400 + 800 + 8000


def test_measured_activations_grow_linearly_with_the_batch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    small = training_memory(model, lambda: model(torch.rand(2, 3, 16, 64)).sum())
    large = training_memory(model, lambda: model(torch.rand(8, 3, 16, 64)).sum())
    assert large.activations == 4 * small.activations
