"""A real low-bit checkpoint: each quantized weight's integers packed at its bit width with its
scales and zero points, every other tensor as it is; loading rebuilds the fake-quantized model
exactly, and the file is really smaller."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ocrsr_lib.checkpoints import load_checkpoint, load_state_dict_strict, save_checkpoint
from ocrsr_lib.quant.apply import QuantizedModel
from ocrsr_lib.quant.quantizers import Grid, QuantizedWeight

FORMAT = "ocrsr-packed-1"


def pack_bits(integers: torch.Tensor, bits: int) -> torch.Tensor:
    """Values in [0, 2^bits) as a little-endian bit stream of ceil(n * bits / 8) bytes."""
    values = integers.reshape(-1).cpu().numpy().astype(np.uint8)
    if values.size and int(values.max()) >= 2**bits:
        raise ValueError(f"a value of {int(values.max())} does not fit in {bits} bits")
    planes = (values[:, None] >> np.arange(bits, dtype=np.uint8)) & 1
    return torch.from_numpy(np.packbits(planes.reshape(-1), bitorder="little"))


def unpack_bits(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """The `count` integers of a stream written by `pack_bits`."""
    if packed.numel() * 8 < count * bits:
        raise ValueError(f"{packed.numel()} bytes cannot hold {count} values of {bits} bits")
    planes = np.unpackbits(packed.numpy(), count=count * bits, bitorder="little")
    weights = (1 << np.arange(bits)).astype(np.uint16)
    return torch.from_numpy((planes.reshape(count, bits) * weights).sum(axis=1).astype(np.uint8))


def save_packed(quantized: QuantizedModel, path: str | os.PathLike) -> Path:
    """Write the quantized model as packed integers plus float tensors (atomically)."""
    state = quantized.model.state_dict()
    packed = {}
    for name, weight in quantized.weights.items():
        packed[name] = {
            "bits": weight.grid.bits,
            "shape": list(weight.integers.shape),
            "data": pack_bits(weight.integers, weight.grid.bits),
            "scale": weight.grid.scale.float().cpu(),
            "zero_point": weight.grid.zero_point.cpu(),
        }
    rest = {name: tensor.cpu() for name, tensor in state.items() if name not in packed}
    return save_checkpoint(path, {"format": FORMAT, "packed": packed, "tensors": rest})


def load_packed(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Fill `model` (built with the right architecture) from a packed checkpoint."""
    payload = load_checkpoint(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a packed ocrsr checkpoint ({FORMAT})")
    state = dict(payload["tensors"])
    for name, entry in payload["packed"].items():
        count = int(np.prod(entry["shape"]))
        integers = unpack_bits(entry["data"], entry["bits"], count).reshape(entry["shape"])
        grid = Grid(entry["bits"], entry["scale"], entry["zero_point"])
        state[name] = QuantizedWeight(integers, grid).values()
    load_state_dict_strict(model, state, str(path))
    return model
