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
        grid = weight.grid
        entry = {
            "bits": grid.bits,
            "shape": list(weight.integers.shape),
            "scale": grid.scale.float().cpu(),
            "zero_point": grid.zero_point.cpu(),
        }
        if grid.levels is None:
            entry["data"] = pack_bits(weight.integers, grid.bits)
        else:  # bit allocation: each channel packed at its own width, byte-aligned
            widths = grid.stored_bits().cpu()
            rows = weight.integers.reshape(len(widths), -1)
            entry["levels"], entry["row_bits"] = grid.levels.cpu(), widths
            entry["data"] = torch.cat(
                [pack_bits(r, int(b)) for r, b in zip(rows, widths, strict=True)]
            )
        packed[name] = entry
    rest = {name: tensor.cpu() for name, tensor in state.items() if name not in packed}
    return save_checkpoint(path, {"format": FORMAT, "packed": packed, "tensors": rest})


def _unpack_entry(entry: dict) -> torch.Tensor:
    """The integers of one packed weight, in its shape."""
    count = int(np.prod(entry["shape"]))
    if "row_bits" not in entry:
        return unpack_bits(entry["data"], entry["bits"], count).reshape(entry["shape"])
    per_row = count // len(entry["row_bits"])
    rows, offset = [], 0
    for bits in entry["row_bits"].tolist():
        size = -(-per_row * bits // 8)
        rows.append(unpack_bits(entry["data"][offset : offset + size], bits, per_row))
        offset += size
    return torch.stack(rows).reshape(entry["shape"])


def load_packed(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Fill `model` (built with the right architecture) from a packed checkpoint."""
    payload = load_checkpoint(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a packed ocrsr checkpoint ({FORMAT})")
    state = dict(payload["tensors"])
    for name, entry in payload["packed"].items():
        integers = _unpack_entry(entry)
        grid = Grid(entry["bits"], entry["scale"], entry["zero_point"], entry.get("levels"))
        state[name] = QuantizedWeight(integers, grid).values()
    load_state_dict_strict(model, state, str(path))
    return model
