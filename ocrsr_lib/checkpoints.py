"""Checkpoint files: atomic saving, safe loading (never unpickling code), strict state dicts."""

from __future__ import annotations

import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import torch
from torch import nn

# what torch.load(weights_only=True) rebuilds besides tensors; exact types, so that subclasses
# (numpy.float64, named tuples, enums) that it would refuse are caught when saving
PLAIN_TYPES = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.Size)
CONTAINER_TYPES = (dict, OrderedDict, list, tuple)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: unreadable, unsafe or not matching the model."""


def unsafe_entries(value: object, where: str = "payload") -> Iterator[str]:
    """Where `value` holds something that loading with `weights_only=True` would refuse."""
    if isinstance(value, torch.Tensor) or type(value) in PLAIN_TYPES:
        return
    if type(value) not in CONTAINER_TYPES:
        yield f"{where} ({type(value).__module__}.{type(value).__qualname__})"
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from unsafe_entries(key, f"{where} key {key!r}")
            yield from unsafe_entries(item, f"{where}[{key!r}]")
    else:
        for index, item in enumerate(value):
            yield from unsafe_entries(item, f"{where}[{index}]")


def save_checkpoint(path: str | os.PathLike, payload: Mapping) -> Path:
    """Write `payload` to `path` atomically: a temporary file beside it, fsync, then rename.

    The payload may hold only tensors and plain containers, numbers and strings, so that
    `load_checkpoint` can read it back; anything else is refused before the file is touched.
    """
    path = Path(path)
    payload = dict(payload)
    unsafe = list(unsafe_entries(payload))
    if unsafe:
        raise TypeError(
            f"cannot save {path}: only tensors and plain containers, numbers and strings load "
            f"safely, not {', '.join(unsafe[:10])}"
        )
    return atomic_write(path, lambda file: torch.save(payload, file))


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write` on a temporary file beside `path`, fsync, then rename it to `path`: a reader
    sees the old file or the whole new one, never a partial write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".partial", dir=path.parent
    )
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return atomic_write(path, lambda file: file.write(text.encode()))


def fsync_directory(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX); nothing where folders cannot be opened."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def refusal_reason(error: Exception) -> str:
    """The line of torch's error that says what was refused or broken."""
    found = re.search(r"WeightsUnpickler error:\s*(.+)", str(error))
    if found:
        return found.group(1).strip()
    return f"{type(error).__name__}: {str(error).strip()}".splitlines()[0]


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> object:
    """Read a checkpoint with `weights_only=True`: tensors and plain containers, never code.

    A missing file is a FileNotFoundError; an unsafe, truncated or corrupt one a CheckpointError.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        reason = refusal_reason(error)
        if re.search(r"Unsupported (global|class)", reason):
            raise CheckpointError(
                f"{path}: refused, the file holds more than tensors and plain containers "
                f"(loading it would run pickled code): {reason}"
            ) from None
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated, corrupt, or pickled data that "
            f"safe loading refuses): {reason}"
        ) from None


def shape_of(value: object) -> tuple[int, ...] | str:
    """A tensor's shape as a tuple, or the type name of something that is not a tensor."""
    if isinstance(value, torch.Tensor):
        return tuple(value.shape)
    return f"a {type(value).__name__}, not a tensor"


def state_dict_mismatches(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> list[str]:
    """Lines naming missing keys, unexpected keys and shape mismatches (empty when they agree)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped = [
        f"{k}: model {tuple(expected[k].shape)} vs file {shape_of(state_dict[k])}"
        for k in expected
        if k in state_dict and tuple(expected[k].shape) != shape_of(state_dict[k])
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
