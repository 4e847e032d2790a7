"""Checkpoint files: atomic saving, safe loading (never unpickling code), strict state dicts."""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, unsafe or not matching the model."""


def save_checkpoint(path: str | os.PathLike, payload: Mapping) -> Path:
    """Write `payload` to `path` atomically: a temporary file beside it, fsync, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".partial", dir=path.parent
    )
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(dict(payload), file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> object:
    """Read a checkpoint with `weights_only=True`: tensors and plain containers, never code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path}: refused, the file holds more than tensors and plain containers "
            f"(loading it would run pickled code): {str(error).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or corrupt): {error}"
        ) from None


def state_dict_mismatches(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """Lines naming missing keys, unexpected keys and shape mismatches (empty when they agree)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped = [
        f"{k}: model {tuple(expected[k].shape)} vs file {tuple(state_dict[k].shape)}"
        for k in expected
        if k in state_dict and tuple(expected[k].shape) != tuple(state_dict[k].shape)
    ]
    lines = []
    for title, keys in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("shape mismatch", misshaped),
    ):
        if keys:
            lines.append(
                f"{title} ({len(keys)}): "
                + ", ".join(keys[:20])
                + (" ..." if len(keys) > 20 else "")
            )
    return lines


def load_state_dict_strict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str
) -> None:
    """Load only if keys and shapes agree exactly; otherwise one error listing every difference."""
    problems = state_dict_mismatches(model, state_dict)
    if problems:
        raise CheckpointError(
            f"{source} does not match {type(model).__name__}:\n  " + "\n  ".join(problems)
        )
    model.load_state_dict(state_dict, strict=True)
