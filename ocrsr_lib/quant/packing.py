"""A real low-bit checkpoint: each quantized weight's integers packed at its bit width with its
scales and zero points, every other tensor as it is; loading rebuilds the fake-quantized model
exactly, and the file is really smaller.

Format "ocrsr-packed-2": {"format", "packed": {name: entry}, "tensors": {name: tensor},
"checksums": {name: SHA-256 hex}}. An entry holds "bits", "shape", "scale", "zero_point" and
"data" (the packed bytes), plus "levels" and "row_bits" after bit allocation. Each tensor's
checksum covers its name and, in sorted field order, every field of its entry (numbers and
shapes by value; tensors by dtype, shape and raw bytes in native byte order), or the float
tensor's dtype, shape and bytes. It catches corruption, not deliberate tampering."""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ocrsr_lib.checkpoints import (
    CheckpointError,
    load_checkpoint,
    load_state_dict_strict,
    save_checkpoint,
)
from ocrsr_lib.quant.aciq import BITS
from ocrsr_lib.quant.apply import QuantizedModel
from ocrsr_lib.quant.quantizers import Grid, QuantizedWeight

FORMAT = "ocrsr-packed-2"
OLD_FORMATS = ("ocrsr-packed-1",)  # without checksums: refused, to be packed again
# widths integers are stored at: a grid's 2 to 8 bits, or 1 for a 2-level channel after allocation
PACK_WIDTHS = range(1, 9)
ENTRY_FIELDS = ("bits", "shape", "scale", "zero_point", "data")
ALLOCATION_FIELDS = ("levels", "row_bits")


def check_width(bits: object) -> None:
    """Refuse a packing width that uint8 integers cannot have (1 to 8 bits)."""
    if type(bits) is not int or bits not in PACK_WIDTHS:
        raise ValueError(f"integers are packed at 1 to 8 bits, not {bits!r}")


def pack_bits(integers: torch.Tensor, bits: int) -> torch.Tensor:
    """Values in [0, 2^bits) as a little-endian bit stream of ceil(n * bits / 8) bytes."""
    check_width(bits)
    if integers.is_floating_point() or integers.is_complex():
        raise ValueError(f"only integers can be packed, not {integers.dtype}")
    flat = integers.reshape(-1).cpu()
    if flat.numel() and int(flat.min()) < 0:
        raise ValueError(f"a value of {int(flat.min())} is negative and cannot be packed")
    if flat.numel() and int(flat.max()) >= 2**bits:
        raise ValueError(f"a value of {int(flat.max())} does not fit in {bits} bits")
    values = flat.numpy().astype(np.uint8)
    planes = (values[:, None] >> np.arange(bits, dtype=np.uint8)) & 1
    return torch.from_numpy(np.packbits(planes.reshape(-1), bitorder="little"))


def unpack_bits(packed: torch.Tensor, bits: int, count: int) -> torch.Tensor:
    """The `count` integers of a stream written by `pack_bits`."""
    check_width(bits)
    if packed.numel() * 8 < count * bits:
        raise ValueError(f"{packed.numel()} bytes cannot hold {count} values of {bits} bits")
    planes = np.unpackbits(packed.numpy(), count=count * bits, bitorder="little")
    weights = (1 << np.arange(bits)).astype(np.uint16)
    return torch.from_numpy((planes.reshape(count, bits) * weights).sum(axis=1).astype(np.uint8))


def checksum(name: str, fields: Mapping[str, object]) -> str:
    """SHA-256 of a tensor's name and fields (sorted): tensors by dtype, shape and raw bytes,
    anything else by its repr, so that any changed byte, width or shape changes it."""
    digest = hashlib.sha256(name.encode())
    for key in sorted(fields):
        value = fields[key]
        if isinstance(value, torch.Tensor):
            flat = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"|{key}:{value.dtype}:{tuple(value.shape)}:".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
        else:
            digest.update(f"|{key}={value!r}".encode())
    return digest.hexdigest()


def save_packed(quantized: QuantizedModel, path: str | os.PathLike) -> Path:
    """Write the quantized model as packed integers plus float tensors, with a checksum for
    each (atomically)."""
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
    checksums = {name: checksum(name, entry) for name, entry in packed.items()}
    checksums |= {name: checksum(name, {"tensor": tensor}) for name, tensor in rest.items()}
    payload = {"format": FORMAT, "packed": packed, "tensors": rest, "checksums": checksums}
    return save_checkpoint(path, payload)


def packed_size(count: int, widths: list[int]) -> int:
    """Bytes of `count` integers split into len(widths) rows, each packed at its width."""
    per_row = count // len(widths)
    return sum(-(-per_row * bits // 8) for bits in widths)


def allocation_problem(entry: dict, channels: int) -> str | None:
    """What is wrong with the per-channel levels and widths of a bit-allocated entry."""
    levels, widths = entry["levels"], entry["row_bits"]
    if channels == 0:
        return "has no channels to allocate levels to"
    if levels.numel() != channels or widths.numel() != channels:
        return f"has {levels.numel()} levels and {widths.numel()} widths for {channels} channels"
    if levels.is_floating_point() or widths.is_floating_point():
        return "has levels or widths that are not integers"
    if bool((levels < 2).any() or (levels > 256).any()):
        return "has a channel with fewer than 2 or more than 256 levels"
    if not torch.equal(widths.long(), torch.ceil(torch.log2(levels.double())).long()):
        return "has channel widths that do not match its levels"
    return None


def entry_problem(entry: object) -> str | None:
    """What makes a packed weight's entry unusable: a missing field, an impossible width, a
    shape that its data, scales or widths do not match (None when it is well formed)."""
    if not isinstance(entry, dict):
        return f"is a {type(entry).__name__}, not a dict of fields"
    allocated = any(field in entry for field in ALLOCATION_FIELDS)
    fields = ENTRY_FIELDS + (ALLOCATION_FIELDS if allocated else ())
    missing = [field for field in fields if field not in entry]
    if missing:
        return f"lacks the field {', '.join(map(repr, missing))}"
    bits, shape = entry["bits"], entry["shape"]
    if type(bits) is not int or bits not in BITS:
        return f"stores bits={bits!r}; quantized weights have {BITS.start} to {BITS.stop - 1} bits"
    if not isinstance(shape, list | tuple) or not all(type(n) is int and n >= 0 for n in shape):
        return f"has shape {shape!r}, not a list of sizes"
    for field in fields[2:]:
        if not isinstance(entry[field], torch.Tensor):
            return f"field {field!r} is a {type(entry[field]).__name__}, not a tensor"
    data, scale, zero_point = entry["data"], entry["scale"], entry["zero_point"]
    if data.dtype != torch.uint8 or data.dim() != 1:
        return f"data is a {data.dtype} tensor of shape {tuple(data.shape)}, not a flat uint8 one"
    channels, count = (shape[0] if shape else 1), math.prod(shape)
    if scale.numel() not in (1, channels) or zero_point.numel() != scale.numel():
        return f"has {scale.numel()} scales and {zero_point.numel()} zero points for shape {shape}"
    widths = [bits]
    if allocated:
        problem = allocation_problem(entry, channels)
        if problem:
            return problem
        widths = entry["row_bits"].tolist()
    if widths and count % len(widths):
        return f"has shape {shape}, which does not split into {len(widths)} channels"
    expected = packed_size(count, widths) if widths else 0
    if data.numel() != expected:
        return f"holds {data.numel()} bytes of data, but shape {shape} packs into {expected}"
    return None


def _unpack_entry(entry: dict) -> torch.Tensor:
    """The integers of one (checked) packed weight, in its shape."""
    count = math.prod(entry["shape"])
    if "row_bits" not in entry:
        return unpack_bits(entry["data"], entry["bits"], count).reshape(entry["shape"])
    per_row = count // len(entry["row_bits"])
    rows, offset = [], 0
    for bits in entry["row_bits"].tolist():
        size = -(-per_row * bits // 8)
        rows.append(unpack_bits(entry["data"][offset : offset + size], bits, per_row))
        offset += size
    return torch.stack(rows).reshape(entry["shape"])


def check_payload(payload: object, path: Path) -> None:
    """Refuse a payload that is not a packed checkpoint of this format with all its fields."""
    if not isinstance(payload, dict) or not isinstance(payload.get("format"), str):
        raise CheckpointError(f"{path} is not a packed ocrsr checkpoint ({FORMAT})")
    if payload["format"] in OLD_FORMATS:
        raise CheckpointError(
            f"{path} is a packed ocrsr checkpoint of the old format {payload['format']}, "
            f"which has no checksums: re-pack it (quantize the model again and save it with "
            f"save_packed) to get {FORMAT}"
        )
    if payload["format"] != FORMAT:
        raise CheckpointError(
            f"{path} is not a packed ocrsr checkpoint ({FORMAT}): its format is "
            f"{payload['format']!r}"
        )
    for field in ("packed", "tensors", "checksums"):
        if not isinstance(payload.get(field), dict):
            raise CheckpointError(f"{path}: packed checkpoint without a {field!r} dict")
    names = list(payload["packed"]) + list(payload["tensors"])
    unlisted = [name for name in names if name not in payload["checksums"]]
    if unlisted:
        raise CheckpointError(f"{path}: no checksum for the tensor {unlisted[0]!r}")
    extra = [name for name in payload["checksums"] if name not in names]
    if extra:
        raise CheckpointError(f"{path}: the tensor {extra[0]!r} is missing (it has a checksum)")


def verify(path: Path, name: str, fields: Mapping[str, object], expected: object) -> None:
    """Refuse a tensor whose checksum differs from the one saved with it."""
    if checksum(name, fields) != expected:
        raise CheckpointError(
            f"{path}: tensor {name!r} fails its checksum: the file is corrupt or was changed "
            "after it was saved"
        )


def load_packed(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Fill `model` (built with the right architecture) from a packed checkpoint, checking every
    entry's fields and every tensor's checksum first."""
    path = Path(path)
    payload = load_checkpoint(path)
    check_payload(payload, path)
    state = {}
    for name, tensor in payload["tensors"].items():
        verify(path, name, {"tensor": tensor}, payload["checksums"][name])
        state[name] = tensor
    for name, entry in payload["packed"].items():
        problem = entry_problem(entry)
        if problem:
            raise CheckpointError(f"{path}: packed tensor {name!r} {problem}")
        verify(path, name, entry, payload["checksums"][name])
        integers = _unpack_entry(entry)
        grid = Grid(entry["bits"], entry["scale"], entry["zero_point"], entry.get("levels"))
        state[name] = QuantizedWeight(integers, grid).values()
    load_state_dict_strict(model, state, str(path))
    return model
