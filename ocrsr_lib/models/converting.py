"""Helpers of the official-checkpoint converters: reading bare state dicts, renaming, counting,
and the checks every converted file must pass.

Each model file converts its own official format with these; files are read with
`weights_only=True` (`checkpoints.load_checkpoint`), so converting never runs pickled code.
`registry.load_official` refuses non-finite weights (`require_finite`) whatever the converter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch

from ocrsr_lib.checkpoints import CheckpointError, load_checkpoint

StateDict = Mapping[str, torch.Tensor]


def strip_prefix(state_dict: StateDict, prefix: str) -> dict[str, torch.Tensor]:
    """Remove `prefix` (e.g. DataParallel's `module.`) from every key that has it."""
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def require_tensor(state_dict: StateDict, key: str, source: str) -> torch.Tensor:
    """The tensor at `key`; a missing one is an error naming it and the file's first keys."""
    if key not in state_dict:
        raise CheckpointError(
            f"{source}: tensor {key!r} is missing; keys start with {sorted(state_dict)[:5]}"
        )
    return state_dict[key]


def tensor_size(state_dict: StateDict, key: str, source: str, axis: int = 0) -> int:
    """The length of `key`'s `axis`, which converters read sizes from; a tensor without that
    axis is an error naming it and its shape (not an IndexError)."""
    tensor = require_tensor(state_dict, key, source)
    if tensor.dim() <= axis:
        raise CheckpointError(
            f"{source}: tensor {key!r} has shape {tuple(tensor.shape)}, no axis {axis} to read "
            "a size from"
        )
    return tensor.shape[axis]


def non_finite_tensors(state_dict: StateDict) -> list[str]:
    """The names of the tensors holding a NaN or an infinite value."""
    return [key for key, tensor in state_dict.items() if not bool(tensor.isfinite().all())]


def require_finite(state_dict: StateDict, source: str) -> None:
    """Refuse NaN or infinite weights, naming the tensors: such a file (corrupt, or saved after
    training diverged) would only turn every output into NaN later."""
    names = non_finite_tensors(state_dict)
    if names:
        shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
        raise CheckpointError(
            f"{source}: {len(names)} tensor(s) hold NaN or infinite values: {shown}; the file is "
            "corrupt or was saved after training diverged"
        )


def plain_state_dict(payload: object, source: str) -> dict[str, torch.Tensor]:
    """The tensor dictionary of a checkpoint that stores it bare."""
    if not isinstance(payload, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in payload.values()
    ):
        raise CheckpointError(f"{source}: expected a plain state dict of tensors")
    return dict(payload)


def read_plain_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The bare state dict stored in the file at `path`, read safely."""
    return plain_state_dict(load_checkpoint(path), str(path))


def numbered(state_dict: StateDict, pattern: str, source: str) -> int:
    """How many modules `pattern` (with one group for the index) numbers 0..N-1."""
    compiled = re.compile(pattern)
    indices = sorted({int(m.group(1)) for k in state_dict if (m := compiled.match(k))})
    if not indices or indices != list(range(len(indices))):
        raise CheckpointError(f"{source}: modules matching {pattern!r} are numbered {indices}")
    return len(indices)
