"""Checkpoint files: atomic saving, safe loading (never unpickling code), strict state dicts."""

from __future__ import annotations

import _compat_pickle
import errno
import io
import os
import pickletools
import re
import shutil
import tempfile
import time
import zipfile
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
# when this process (near enough: this module) started; a `.partial` file last written before it
# by a writer that is no longer alive is left over from a save that died
STARTED = time.time()
PICKLE_SCAN_BYTES = 64 << 20  # pickles are small (tensors are stored apart): read no more
# a save's temporary file: `.NAME.<writer's pid>.<random>.partial` (older ones lack the pid)
PARTIAL_PATTERN = re.compile(r"^\..+?(?:\.(?P<pid>\d+))?\.[^.]+\.partial$")


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
    remove_stale_partials(path.parent)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".partial", dir=path.parent
    )
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        follow_umask(Path(temporary))
        os.replace(temporary, path)
    except Exception as error:
        failure = write_failure(error, path)
        Path(temporary).unlink(missing_ok=True)
        if failure is None:
            raise
        raise failure from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
    return path


FULL_DISK_MARGIN = 1 << 20  # bytes: less free space than this after a failed write means full


def write_failure(error: Exception, path: Path) -> OSError | None:
    """An OSError naming `path` and the cause for a write that failed without saying where or
    why (torch reports a full disk as "unexpected pos"); None to keep the original error."""
    if isinstance(error, OSError) and error.filename is not None:
        return None
    try:
        full = shutil.disk_usage(path.parent).free < FULL_DISK_MARGIN
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    if isinstance(error, OSError) and error.errno is not None:
        return OSError(error.errno, error.strerror or str(error), str(path))
    return None


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (on this machine); True when that cannot be told."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else, or the check itself failed
        return True
    return True


def stale_partial(file: Path) -> bool:
    """Whether `file` is a save's temporary file left by a writer that died: last written before
    this process started, and its writer's pid (when the name has one) no longer running."""
    found = PARTIAL_PATTERN.match(file.name)
    if not found:
        return False
    try:
        if not file.is_file() or file.stat().st_mtime >= STARTED:
            return False
    except OSError:
        return False
    return found["pid"] is None or not process_alive(int(found["pid"]))


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete the temporary files that saves killed mid-write left in `folder` (each the size of
    a checkpoint, and nothing else would ever remove them); a live writer's file is kept."""
    removed = []
    for file in folder.glob(".*.partial"):
        if stale_partial(file):
            try:
                file.unlink()
            except OSError:  # another process removed it first, or it may not be removed
                continue
            removed.append(file)
    return removed


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def follow_umask(path: Path) -> None:
    """Give a file or folder made by `mkstemp`/`mkdtemp` (always 0600/0700) the mode a plain
    `open`/`mkdir` would give it, so that a shared cache or dataset stays readable by the group."""
    base = 0o777 if path.is_dir() else 0o666
    os.chmod(path, base & ~current_umask())


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
    """The line of torch's error that says what was refused or broken, without torch's advice
    to load with `weights_only=False` or to allowlist classes (both would run the file's code)."""
    text = str(error)
    found = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    if found:
        return found.group(1).split("Please use", 1)[0].strip()
    advice = re.compile(r"weights_only|Weights only load failed|add_safe_globals|trust")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    kept = [line for line in lines if not advice.search(line)]
    return f"{type(error).__name__}: {kept[0] if kept else 'refused by the safe loader'}"


def python3_name(module: str, name: str) -> str:
    """The dotted name Python 3 resolves a pickled global to (protocol 2 writes `commands.call`
    for `subprocess.call`, `__builtin__.eval` for `builtins.eval`)."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    return f"{module}.{name}"


def globals_in_pickles(file: BinaryIO) -> list[str]:
    """The functions and classes named by the pickles at the start of `file`, read with
    `pickletools` (which runs nothing); a legacy torch file is five pickles in a row."""
    names, pushed, memo = [], [None, None], {}
    stream = io.BytesIO(file.read(PICKLE_SCAN_BYTES))
    try:
        for _ in range(5):
            for opcode, argument, _ in pickletools.genops(stream):
                if opcode.name in ("GLOBAL", "INST"):
                    names.append(python3_name(*argument.split(" ", 1)))
                elif opcode.name == "STACK_GLOBAL":  # module and name: the last two strings
                    names.append(python3_name(str(pushed[-2]), str(pushed[-1])))
                elif opcode.name == "MEMOIZE":
                    memo[len(memo)] = pushed[-1]
                elif opcode.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                    memo[argument] = pushed[-1]
                elif opcode.name in ("GET", "BINGET", "LONG_BINGET"):
                    pushed.append(memo.get(argument))
                elif opcode.name != "FRAME":
                    pushed.append(argument if isinstance(argument, str) else None)
    except Exception:  # the end of the pickles: raw tensor bytes, truncation or garbage
        pass
    return names


def allowed_by_torch(name: str) -> bool:
    """Whether torch's safe loader accepts the pickled global `name` (its own allowlist and
    `add_safe_globals`; with a torch that lacks these private helpers, torch's own names)."""
    from torch import _weights_only_unpickler as unpickler

    try:
        allowed = unpickler._get_allowed_globals() | unpickler._get_user_allowed_globals()
    except AttributeError:
        return name.startswith(("torch.", "collections.OrderedDict"))
    return name in allowed


def pickled_code(path: Path) -> list[str]:
    """The functions and classes a checkpoint's pickles would call that torch's safe loader does
    not allow (empty when there are none, or when the file cannot be read as pickles)."""
    names = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    if member.endswith(".pkl"):
                        with archive.open(member) as file:
                            names += globals_in_pickles(file)
        else:
            with open(path, "rb") as file:
                names = globals_in_pickles(file)
    except (OSError, zipfile.BadZipFile, RuntimeError, ValueError):
        return []
    return [name for name in dict.fromkeys(names) if not allowed_by_torch(name)]


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
        code = pickled_code(path)
        if code:
            raise CheckpointError(
                f"{path}: refused code execution: loading the file would run pickled code named "
                f"{', '.join(code[:10])}; only tensors and plain containers are loaded, and "
                "nothing in this file was run"
            ) from None
        reason = refusal_reason(error)
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
