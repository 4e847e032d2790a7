"""Weights shipped with the package, so that a fresh clone or `pip install .` evaluates the demo
without training: per run, a safetensors file of the model's state dict (parameters and buffers;
no optimizer state, no pickle) and a JSON manifest beside it (recipe, run key, SHA-256, how,
where and from which commit it was made, and the training history the chapters plot), in
`ocrsr_lib/shipped_weights/<profile>/`, named like the cache's checkpoint:
`<prefix>-<recipe>-<key>.safetensors`.

`runs.core.trained` loads a shipped file when the cache lacks the run and the file's key equals
the run's key; `ocrsr_lib.shipping` makes the files (`ocrsr weights build`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import nn

from ocrsr_lib.checkpoints import (
    CheckpointError,
    atomic_write,
    atomic_write_text,
    load_state_dict_strict,
)
from ocrsr_lib.train import TrainResult

SHIPPED_WEIGHTS = Path(__file__).resolve().parents[1] / "shipped_weights"
MANIFEST_FORMAT = 1
# storage of floating-point tensors: float32 is what training produced (a retrain reproduces it
# exactly); float16 halves the files, and a model loaded from one holds the rounded weights
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}
# what every manifest holds (written by `write_shipped` and `ocrsr_lib.shipping.ship_run`)
MANIFEST_FIELDS = (
    "format",
    "file",
    "recipe",
    "profile",
    "key",
    "sha256",
    "bytes",
    "dtype",
    "command",
    "commit",
    "seconds",
    "images_per_second",
    "batch_size",
    "steps",
    "device",
    "threads",
    "cpu_capability",
    "torch",
    "history",
    "unused",
)


def shipped_folder(profile: str) -> Path:
    """The folder of the weights shipped for a profile (package data; it may not exist)."""
    return SHIPPED_WEIGHTS / profile


def shipped_name(prefix: str, name: str, key: str) -> str:
    """A shipped file's name: the cache's checkpoint name, as safetensors."""
    return f"{prefix}-{name}-{key}.safetensors"


def manifest_path(path: str | Path) -> Path:
    """The JSON manifest beside a shipped safetensors file."""
    return Path(path).with_suffix(".json")


def storage_dtype(dtype: str) -> torch.dtype:
    """The torch dtype of a weight storage name; an unknown name is an error listing them."""
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"weights are stored as one of {list(STORAGE_DTYPES)}, not {dtype!r}")
    return STORAGE_DTYPES[dtype]


def learned_tensor_names(model: nn.Module) -> set[str]:
    """State-dict names of what training sets: parameters and normalization statistics. The
    other buffers are computed from the configuration (the TPS's matrices, whose rounding to
    float16 would wreck the warp: an ill-conditioned inverse), so they are never rounded."""
    names = {name for name, _ in model.named_parameters(remove_duplicate=False)}
    for prefix, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, nn.modules.batchnorm._NormBase):
            statistics = ("running_mean", "running_var")
            names |= {f"{prefix}.{buffer}".lstrip(".") for buffer in statistics}
    return names


@torch.no_grad()
def round_to_storage(model: nn.Module, dtype: str) -> nn.Module:
    """Round the model's learned floating-point tensors (`learned_tensor_names`) to the storage
    precision and back, in place, so that a model trained now holds exactly what its shipped
    file holds; returns it."""
    stored, learned = storage_dtype(dtype), learned_tensor_names(model)
    for name, tensor in model.state_dict().items():
        if name in learned and tensor.is_floating_point() and stored != tensor.dtype:
            tensor.copy_(tensor.to(stored))
    return model


def stored_tensors(
    model: nn.Module, dtype: str = "float32", unused: Sequence[str] = ()
) -> dict[str, torch.Tensor]:
    """The model's state dict without the `unused` entries (never read by the forward) as
    separate contiguous CPU tensors (safetensors refuses shared storage), the learned
    floating-point ones stored as `dtype` (computed buffers stay as they are)."""
    stored, learned, tensors = storage_dtype(dtype), learned_tensor_names(model), {}
    for name, tensor in model.state_dict().items():
        if name in unused:
            continue
        tensor = tensor.detach().to("cpu")
        if name in learned and tensor.is_floating_point():
            tensor = tensor.to(stored)
        tensors[name] = tensor.contiguous().clone()
    return tensors


def history_of(result: TrainResult) -> dict:
    """The training history as JSON data (a term's NaN, where a step did not report it, as null)."""
    terms = {
        name: [None if math.isnan(value) else value for value in values]
        for name, values in result.terms.items()
    }
    return {"losses": result.losses, "terms": terms, "validations": result.validations}


def result_from(manifest: Mapping) -> TrainResult:
    """The run's TrainResult as recorded: history, steps, training seconds and device."""
    history = manifest["history"]
    terms = {
        name: [math.nan if value is None else value for value in values]
        for name, values in history["terms"].items()
    }
    losses = list(history["losses"])
    return TrainResult(
        steps=manifest["steps"],
        resumed_from=len(losses),  # nothing was trained by this call
        losses=losses,
        terms=terms,
        validations=list(history["validations"]),
        seconds=manifest["seconds"],
        device=manifest["device"],
    )


def manifest_text(manifest: Mapping) -> str:
    """JSON with one line per field (long histories stay on their own line)."""
    lines = [f"  {json.dumps(name)}: {json.dumps(value)}" for name, value in manifest.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_shipped(
    path: str | Path,
    model: nn.Module,
    manifest: Mapping,
    dtype: str = "float32",
    unused: Sequence[str] = (),
) -> Path:
    """Write the model's tensors but the `unused` ones to `path` and the manifest beside it
    (each atomically); the manifest gets the file's name, size, SHA-256, storage dtype and the
    names left out."""
    path = Path(path)
    tensors = stored_tensors(model, dtype, unused)
    # one metadata entry: safetensors writes several in a random order, so two writes of the
    # same tensors would differ in bytes (and SHA-256)
    data = save_tensors(tensors, metadata={"run": f"{manifest['recipe']} {manifest['key']}"})
    atomic_write(path, lambda file: file.write(data))
    described = {"format": MANIFEST_FORMAT, "file": path.name, **manifest} | {
        "format": MANIFEST_FORMAT,
        "file": path.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "dtype": dtype,
        "unused": sorted(unused),
    }
    missing = [name for name in MANIFEST_FIELDS if name not in described]
    if missing:
        raise ValueError(f"the manifest of {path} lacks {missing}")
    atomic_write_text(manifest_path(path), manifest_text(described))
    return path


def read_manifest(path: str | Path) -> dict:
    """The manifest of a shipped file; a missing, unreadable or incomplete one is an error
    naming the file."""
    manifest_file = manifest_path(path)
    if not manifest_file.is_file():
        raise FileNotFoundError(f"no manifest {manifest_file} beside the shipped file {path}")
    try:
        manifest = json.loads(manifest_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{manifest_file}: not a readable manifest: {error}") from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{manifest_file}: a manifest is a JSON object, not {manifest!r:.40}")
    missing = [name for name in MANIFEST_FIELDS if name not in manifest]
    if missing:
        raise CheckpointError(f"{manifest_file}: the manifest lacks {missing}")
    return manifest


def load_shipped(model: nn.Module, path: str | Path, key: str | None = None) -> TrainResult:
    """Load a shipped file into `model` after checking its manifest (this file, the run `key`
    when given) and its SHA-256; return the training history the manifest records. Every key
    and shape must match, except the tensors the manifest lists as unused (never read by the
    forward), which the file leaves out and the model keeps as built."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest["file"] != path.name or (key is not None and manifest["key"] != key):
        raise CheckpointError(
            f"{manifest_path(path)} describes {manifest['file']} with key {manifest['key']}, "
            f"not {path.name}" + (f" with key {key}" if key else "")
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest["sha256"]:
        raise CheckpointError(
            f"{path}: SHA-256 {digest} differs from the manifest's {manifest['sha256']} (a "
            f"corrupt or changed file); re-make it with `{manifest['command']}`, or retrain "
            "instead (--retrain, OCRSR_RETRAIN=1)"
        )
    try:
        tensors = load_tensors(data)
    except Exception as error:  # safetensors' own error type
        raise CheckpointError(f"{path}: not a readable safetensors file: {error}") from None
    unused = set(manifest["unused"])
    kept = {name: value for name, value in model.state_dict().items() if name in unused}
    load_state_dict_strict(model, {**kept, **tensors}, f"shipped file {path}")
    return result_from(manifest)


def shipped_manifests(profile: str) -> list[dict]:
    """The manifests of the weights shipped for a profile, by file name. The manifest is
    written last, so weights without one (an interrupted build) are not listed."""
    folder = shipped_folder(profile)
    weights = sorted(path.with_suffix(".safetensors") for path in folder.glob("*.json"))
    return [read_manifest(path) for path in weights if path.is_file()]
