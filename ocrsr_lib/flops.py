"""FLOPs of a piece of model work, counted by PyTorch's `FlopCounterMode`, and GPU bf16 peaks.

The counter sees matrix products, convolutions and attention, in the forward pass and, when the
work runs one, the backward pass; elementwise ops, normalisation, softmax, interpolation, grid
sampling and optimiser steps count nothing (a small share of the total in these models).
One multiply-add is 2 FLOPs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

aten = torch.ops.aten


Shape = tuple[int, ...]


def _cpu_sdpa_flop(
    query_shape: Shape, key_shape: Shape, value_shape: Shape, *args: Any, **kwargs: Any
) -> int:
    """FLOPs of the CPU fused attention kernel (PyTorch's registry lists only the GPU ones)."""
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward_flop(
    grad_out_shape: Shape,
    query_shape: Shape,
    key_shape: Shape,
    value_shape: Shape,
    *args: Any,
    **kwargs: Any,
) -> int:
    """FLOPs of the CPU fused attention kernel's backward pass."""
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


CPU_ATTENTION_FLOPS = {
    aten._scaled_dot_product_flash_attention_for_cpu: _cpu_sdpa_flop,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_sdpa_backward_flop,
}

# Vendors' dense (no sparsity) bf16 tensor-core peaks in FLOP/s, from the data sheets. The first
# entry whose words all appear in the device name wins; None: a variant whose peak is not listed.
BF16_PEAKS: tuple[tuple[tuple[str, ...], float | None], ...] = (
    (("H100", "PCIE"), 756e12),
    (("H100", "NVL"), None),
    (("H100",), 989.4e12),  # SXM, named e.g. "NVIDIA H100 80GB HBM3"
    (("H200", "NVL"), None),
    (("H200",), 989.4e12),  # SXM
    (("A100",), 312e12),  # SXM and PCIe
    (("L40S",), 362.05e12),
    (("L4",), 121e12),
)


def count_flops(work: Callable[[], object]) -> int:
    """FLOPs of one call of `work` (forward, plus backward if the work runs it)."""
    with FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS) as counter:
        work()
    return counter.get_total_flops()


def flops_per_image(work: Callable[[], object], images: int) -> float:
    """FLOPs per image of one call of `work`, which handles `images` images."""
    if images < 1:
        raise ValueError(f"work must handle at least one image, got {images}")
    return count_flops(work) / images


def bf16_peak(device_name: str) -> float | None:
    """The dense bf16 tensor-core peak (FLOP/s) of a GPU named like `torch.cuda.get_device_name`,
    or None when the table does not know it."""
    words = set(device_name.upper().replace("-", " ").split())
    for required, peak in BF16_PEAKS:
        if words.issuperset(required):
            return peak
    return None
