"""Helpers of the official-checkpoint converters: reading bare state dicts, renaming, counting.

Each model file converts its own official format with these; files are read with
`weights_only=True` (`checkpoints.load_checkpoint`), so converting never runs pickled code.
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
