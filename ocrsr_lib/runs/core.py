"""The one trained-run implementation: find a recipe by name, key it by pure data, then read
it back from the cache, load the weights shipped with the package for that key, train it
(resuming an interrupted run), or load the official file that replaces it.

A recipe is a frozen dataclass with a `train` TrainConfig and a `start_from` (another recipe
of the same family, or None). A `Family` (SR models, the guide and judge, CDistNet) holds the
recipe tables of every profile and the hooks that differ between families: what model to
build, what else its weights depend on, and how to fit it. Everything else is here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ocrsr_lib.cache import short_hash
from ocrsr_lib.checkpoints import (
    CheckpointError,
    atomic_write_text,
    load_checkpoint,
    load_state_dict_strict,
)
from ocrsr_lib.config import OFFICIAL_RUNS, Session
from ocrsr_lib.data import skipped_lines
from ocrsr_lib.models.registry import check_official, model_sizes
from ocrsr_lib.runs.shipped import (
    load_shipped,
    read_manifest,
    round_to_storage,
    shipped_folder,
    shipped_name,
)
from ocrsr_lib.train import TrainConfig, TrainResult


class Recipe(Protocol):
    """What every recipe has: the registered model and size it trains, its training settings
    and the run it starts from."""

    model: str
    size: str
    train: TrainConfig
    start_from: str | None


@dataclass
class Run:
    """A trained model (eval mode), its training history, its checkpoint file (the shipped or
    official file when it came from one), its key and where its weights came from."""

    name: str
    model: nn.Module
    result: TrainResult
    checkpoint: Path
    key: str
    source: str = "trained"  # "trained" (now), "cache", "shipped" or "official"


@dataclass(frozen=True)
class Family:
    """One model family's recipes and the hooks in which families differ.

    `build(recipe)` makes the fresh model; `key_parts(session, recipe)` names what else
    determines the weights (the data's identity, runs it depends on, by their keys; pure);
    `fit(session, recipe, model, checkpoint)` trains or resumes it; `load_start(model, start)`
    copies a starting run's weights in."""

    prefix: str  # checkpoint files are named <prefix>-<recipe>-<key>.pt
    recipes: Mapping[str, Mapping[str, Recipe]]  # recipe table name -> recipe name -> recipe
    build: Callable[[Any], nn.Module]  # each family's own recipe type, a Recipe
    key_parts: Callable[[Session, Any], dict]
    fit: Callable[[Session, Any, nn.Module, Path], TrainResult]
    load_start: Callable[[nn.Module, Run], None] = lambda model, start: load_state_dict_strict(
        model, start.model.state_dict(), f"start {start.name}"
    )


FAMILIES: list[Family] = []  # filled by the family modules of `ocrsr_lib.runs`

# TrainConfig fields that do not change the weights and joined TrainConfig after caches were
# named: left out of the keys so that existing trained runs keep their names
UNHASHED_TRAIN_FIELDS = ("compile",)


def register_family(family: Family) -> Family:
    """Make a family's recipes reachable by `trained` (recipe names are unique overall)."""
    FAMILIES.append(family)
    return family


def family_of(session: Session, name: str) -> Family:
    """The family whose table for the session's profile has a recipe called `name`."""
    table = session.profile.recipe_table
    for family in FAMILIES:
        if name in family.recipes[table]:
            return family
    known = [recipe for family in FAMILIES for recipe in family.recipes[table]]
    raise KeyError(f"no recipe {name!r} in profile {session.profile.name!r}; known: {known}")


def recipe_for(session: Session, name: str) -> Any:
    """Recipe `name` of the session profile's table, its training cut to the profile's budget
    and with the session's training overrides (batch size, bf16, ...)."""
    recipe = family_of(session, name).recipes[session.profile.recipe_table][name]
    train = replace(recipe.train.scaled(session.profile.budget), **session.train_overrides)
    return replace(recipe, train=train)


def recipe_fields(recipe: object) -> dict:
    """A recipe as a dict for its key, without UNHASHED_TRAIN_FIELDS."""
    fields = asdict(recipe)
    for name in UNHASHED_TRAIN_FIELDS:
        fields["train"].pop(name, None)
    return fields


def official_key(session: Session, name: str) -> str | None:
    """For a recipe replaced by an official file: a short hash naming that file (its path, size
    and modification time); None for a recipe that is trained."""
    path = session.official.get(name)
    if path is None:
        return None
    stat = path.stat()
    return short_hash(
        {"official": str(path.resolve()), "size": stat.st_size, "mtime": stat.st_mtime_ns}
    )


def key_parts(session: Session, name: str) -> dict:
    """Everything that determines the recipe's weights, as pure data (no data is read)."""
    official = official_key(session, name)
    if official:
        return {"official": official}
    recipe = recipe_for(session, name)
    return {
        "recipe": recipe_fields(recipe),
        "model": asdict(model_sizes(recipe.model)[recipe.size]),  # what the size name means now
        "storage": session.profile.weight_storage,
        "start": run_key(session, recipe.start_from) if recipe.start_from else None,
        **family_of(session, name).key_parts(session, recipe),
    }


def run_key(session: Session, name: str) -> str:
    """A short hash of everything that determines the recipe's weights."""
    return official_key(session, name) or short_hash(key_parts(session, name))


def dependencies(session: Session, name: str) -> list[str]:
    """The runs whose weights run `name` needs (the run it starts from, the guide of a guided
    loss, the SR run whose images it reads): recipes its fields name whose keys are in its key."""
    table = session.profile.recipe_table
    known = {recipe for family in FAMILIES for recipe in family.recipes[table]}
    fields = asdict(recipe_for(session, name)).values()
    named = {value for value in fields if isinstance(value, str) and value in known}
    parts = key_parts(session, name)
    keys = {value for value in parts.values() if isinstance(value, str)}
    return sorted(other for other in named if other != name and run_key(session, other) in keys)


def needed_runs(session: Session, names: Sequence[str]) -> list[str]:
    """`names` and every run they depend on, transitively, each after its dependencies."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name not in ordered:
            for dependency in dependencies(session, name):
                visit(dependency)
            ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def checkpoint_path(session: Session, name: str) -> Path:
    """Where the recipe's training checkpoint lives in the session's cache."""
    prefix = family_of(session, name).prefix
    return session.cache.file("checkpoints", f"{prefix}-{name}", key_parts(session, name))


def shipped_file(session: Session, name: str) -> Path | None:
    """The file shipped with the package whose key equals the run's key, unless the session
    retrains or an official file replaces the run; None when there is none (any change to the
    recipe, its data or what it depends on changes the key, so stale weights never match)."""
    if session.retrain or name in session.official:
        return None
    prefix = family_of(session, name).prefix
    path = shipped_folder(session.profile.name) / shipped_name(prefix, name, run_key(session, name))
    return path if path.is_file() else None


def trained(session: Session, name: str, use_shipped: bool = True) -> Run:
    """The recipe's model: read from the cache, else loaded from the weights shipped with the
    package for its key (unless the session retrains or `use_shipped` is off for this run, as
    when it is being built for shipping), else trained now (resuming an interrupted run,
    training what it starts from first); or the official checkpoint the session names.

    Explained in chapter 2.
    """
    if name in session.official:
        model = check_official(OFFICIAL_RUNS[name], session.official[name], recipe=name).eval()
        key = run_key(session, name)
        return Run(name, model, TrainResult(steps=0), session.official[name], key, "official")
    family, recipe = family_of(session, name), recipe_for(session, name)
    path = checkpoint_path(session, name)
    torch.manual_seed(recipe.train.seed)  # the same initial weights whatever ran before
    model = family.build(recipe)
    shipped = None if path.exists() or not use_shipped else shipped_file(session, name)
    if shipped is not None:
        result = load_shipped(model, shipped, run_key(session, name))
        round_to_storage(model.to(session.device).eval(), session.profile.weight_storage)
        return Run(name, model, result, shipped, run_key(session, name), "shipped")
    if recipe.start_from and not path.exists():
        family.load_start(model, trained(session, recipe.start_from))
    result = family.fit(session, recipe, model, path)
    if session.skipped:
        log_skipped(session, path)
    round_to_storage(model.eval(), session.profile.weight_storage)
    source = "cache" if result.resumed_from == len(result.losses) else "trained"
    return Run(name, model, result, path, run_key(session, name), source)


def weights_line(run: Run) -> str:
    """One line saying where a run's weights came from (printed by the training commands)."""
    if run.source == "shipped":
        manifest = read_manifest(run.checkpoint)
        return (
            f"weights: shipped {run.checkpoint} (trained in {manifest['seconds']:.0f} s on "
            f"{manifest['device']}, {manifest['dtype']})"
        )
    described = {"trained": "trained now", "cache": "from the cache", "official": "official file"}
    return f"weights: {described[run.source]}"


def check_official_runs(session: Session) -> None:
    """Convert every official file the session names and start each recipe that starts from it
    now, so that a wrong file is refused (naming recipe, file and cause) before any training."""
    table = session.profile.recipe_table
    for name, path in session.official.items():
        start = trained(session, name)  # converts the file once; errors name the recipe
        for family in FAMILIES:
            for consumer, recipe in family.recipes[table].items():
                if recipe.start_from != name:
                    continue
                try:
                    family.load_start(family.build(recipe), start)
                except CheckpointError as error:
                    raise CheckpointError(
                        f"the official file {path} for {name!r} cannot start {consumer!r}: {error}"
                    ) from None


def log_skipped(session: Session, checkpoint: Path) -> Path:
    """Write the records the session left out beside the run's checkpoint (`.skipped.txt`), so
    that a run trained with `skip_corrupt` says what it did not see."""
    return atomic_write_text(
        checkpoint.with_suffix(".skipped.txt"), "\n".join(skipped_lines(session)) + "\n"
    )


def load_trained_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the model weights of a training checkpoint written by `ocrsr_lib.train`."""
    checkpoint = load_checkpoint(path)
    load_state_dict_strict(model, checkpoint["model"], f"checkpoint {path}")
    return model.eval()
