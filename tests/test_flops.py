"""FLOP counting: hand-computed counts of small layers, training vs forward, the peak table."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ocrsr_lib.flops import bf16_peak, count_flops, flops_per_image


def test_linear_forward_is_two_flops_per_multiply_add() -> None:
    layer = nn.Linear(8, 5)
    x = torch.rand(3, 8)
    assert flops_per_image(lambda: layer(x), 3) == 2 * 8 * 5


def test_conv2d_forward_counts_every_output_pixel() -> None:
    conv = nn.Conv2d(3, 4, kernel_size=3, padding=1)
    x = torch.rand(2, 3, 10, 12)
    with torch.no_grad():
        assert flops_per_image(lambda: conv(x), 2) == 2 * 3 * 4 * 3 * 3 * 10 * 12


def test_training_step_counts_backward_too() -> None:
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 5))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.rand(4, 8)
    first, second = 2 * 8 * 6, 2 * 6 * 5

    def step() -> None:
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()

    forward = flops_per_image(lambda: model(x), 4)
    training = flops_per_image(step, 4)
    assert forward == first + second
    # backward: both weight gradients, and the input gradient of the second layer only
    assert training == forward + first + 2 * second
    assert training > forward


def test_cpu_fused_attention_is_counted_like_its_matrix_products() -> None:
    q, k, v = torch.rand(2, 4, 10, 8), torch.rand(2, 4, 7, 8), torch.rand(2, 4, 7, 8)
    fused = count_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    by_hand = count_flops(lambda: (q @ k.transpose(-1, -2)).softmax(-1) @ v)
    assert fused == by_hand == 2 * (2 * 2 * 4 * 10 * 7 * 8)
    q.requires_grad_(True)
    training = count_flops(lambda: F.scaled_dot_product_attention(q, k, v).sum().backward())
    assert training > fused


def test_flops_per_image_needs_images() -> None:
    with pytest.raises(ValueError, match="at least one image"):
        flops_per_image(lambda: None, 0)


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989.4e12),
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA H100 NVL", None),
        ("NVIDIA H200", 989.4e12),
        ("NVIDIA GH200 480GB", None),
        ("NVIDIA A100-SXM4-80GB", 312e12),
        ("NVIDIA L4", 121e12),
        ("NVIDIA L40S", 362.05e12),
        ("Tesla V100-SXM2-16GB", None),
    ],
)
def test_bf16_peak_by_device_name(name: str, peak: float | None) -> None:
    assert bf16_peak(name) == peak
