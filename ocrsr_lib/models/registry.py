"""One registry: models built by name and size, official checkpoints converted by kind.

Each model file registers its sizes, its builder and its converters when it is imported
(`ocrsr_lib.models` imports them all), so this module imports none of them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from torch import nn

from ocrsr_lib.checkpoints import CheckpointError, state_dict_mismatches
from ocrsr_lib.models.converting import require_finite

Builder = Callable[..., nn.Module]  # (a size's configuration, **options) -> a fresh model
Converter = Callable[..., nn.Module]  # (path of an official file, **options) -> a model


@dataclass(frozen=True)
class RegisteredModel:
    """A model's named sizes (configurations), the function that builds one, and the state dict
    entries its forward never reads (kept only so that official files load)."""

    sizes: Mapping[str, object]
    builder: Builder
    unused: re.Pattern | None = None


MODELS: dict[str, RegisteredModel] = {}
CONVERTERS: dict[str, Converter] = {}


def register_model(
    name: str, sizes: Mapping[str, object], builder: Builder, unused: re.Pattern | None = None
) -> None:
    """Make `create_model(name, size)` call `builder(sizes[size], **options)`; `unused` matches
    the names of state dict entries that the forward never reads."""
    if name in MODELS:
        raise ValueError(f"a model named {name!r} is already registered")
    MODELS[name] = RegisteredModel(sizes, builder, unused)


def unused_tensor_names(name: str, model: nn.Module) -> list[str]:
    """The entries of `model`'s state dict (a model registered as `name`) that its forward
    never reads: they are neither shipped nor counted as weights that run."""
    pattern = registered_model(name).unused
    return [key for key in model.state_dict() if pattern is not None and pattern.search(key)]


def model_names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(MODELS)


def registered_model(name: str) -> RegisteredModel:
    """The registration of `name`; an unknown name is an error listing the known ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {model_names()}")
    return MODELS[name]


def model_sizes(name: str) -> Mapping[str, object]:
    """The configurations of a registered model by size name (read-only)."""
    return MappingProxyType(registered_model(name).sizes)


def create_model(name: str, size: str, **options) -> nn.Module:
    """A fresh model `name` at `size`; `options` go to its builder (e.g. `stn_at_eval`)."""
    model = registered_model(name)
    if size not in model.sizes:
        raise ValueError(f"unknown size {size!r} of model {name!r}; known: {sorted(model.sizes)}")
    return model.builder(model.sizes[size], **options)


def register_converter(kind: str, converter: Converter) -> None:
    """Make `load_official(kind, path, **options)` call `converter(path, **options)`."""
    if kind in CONVERTERS:
        raise ValueError(f"a converter of kind {kind!r} is already registered")
    CONVERTERS[kind] = converter


def official_kinds() -> list[str]:
    """The kinds of official checkpoint that `load_official` converts, sorted."""
    return sorted(CONVERTERS)


def load_official(kind: str, path: str | os.PathLike, **options) -> nn.Module:
    """The library's model holding an official checkpoint's weights, in eval mode.

    `options` go to the kind's converter (e.g. `residual_scale` for "edsr"). Whatever the
    converter, NaN or infinite weights are refused (`converting.require_finite`).
    """
    if kind not in CONVERTERS:
        raise ValueError(f"unknown official checkpoint kind {kind!r}; known: {official_kinds()}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    model = CONVERTERS[kind](path, **options)
    require_finite(model.state_dict(), str(path))
    return model.eval()


def check_official(
    kind: str, path: str | os.PathLike, recipe: str = "", fits: nn.Module | None = None
) -> nn.Module:
    """The converted official model (`load_official` without options), or an error that names
    the recipe it stands in for, so that a wrong file is refused before any work.

    `recipe` (a key of `config.OFFICIAL_RUNS`) is named in the error; with `fits`, the converted
    tensors must also load strictly into that model (e.g. the fresh model of a recipe that
    starts from the official run), which is left untouched.
    """
    what = f"the official {kind!r} checkpoint" + (f" for recipe {recipe!r}" if recipe else "")
    try:
        model = load_official(kind, path)
    except (ValueError, FileNotFoundError) as error:  # CheckpointError is a ValueError
        raise type(error)(f"{what} cannot be used: {error}") from None
    problems = state_dict_mismatches(fits, model.state_dict()) if fits is not None else []
    if problems:
        raise CheckpointError(
            f"{what} cannot be used: {path} does not fit the {type(fits).__name__} that starts "
            "from it:\n  " + "\n  ".join(problems)
        )
    return model


def parameter_count(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters as the papers report them (frozen ones, such as EDSR's mean shift,
    included unless asked)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# reference inputs and outputs of the official networks on small official-format checkpoints,
# computed by running the official code (their README records how); the tests check every
# converter against them and the book repeats some of those checks
OFFICIAL_REFERENCES = Path(__file__).resolve().parents[1] / "official_references"
