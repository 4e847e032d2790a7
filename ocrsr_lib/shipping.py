"""Making the weights shipped with the package (`ocrsr weights build`, `ocrsr weights list`):
which runs each profile ships, the order that trains what a run depends on first, writing a
trained run as a shipped file with its manifest (`ocrsr_lib.runs.shipped`), and finding shipped
files whose recipe has changed since (a test fails on them, naming the command that re-makes
them)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

import torch

from ocrsr_lib.config import Session
from ocrsr_lib.models import unused_tensor_names
from ocrsr_lib.runs.core import FAMILIES, family_of, needed_runs, recipe_for, run_key, trained
from ocrsr_lib.runs.shipped import (
    history_of,
    manifest_path,
    shipped_folder,
    shipped_manifests,
    shipped_name,
    write_shipped,
)

# the runs whose weights ship with the package, per profile: every run the chapters train on
# the demo profile (which needs no data but the synthetic TextZoom); none at paper scale
SHIPPED_RUNS: dict[str, tuple[str, ...]] = {
    "demo": (
        "edsr-natural",
        "edsr",
        "stn-edsr",
        "stn-edsr-scratch",
        "tbsrn",
        "guide",
        "judge",
        "stn-edsr-mse",
        "stn-edsr-mse+position",
        "stn-edsr-mse+content",
        "stn-edsr-text-focus",
        "tbsrn-text-focus",
        "pretrain",
        "finetune-hr",
        "finetune-bicubic",
        "finetune-stn-edsr-text-focus",
        "finetune-tbsrn-text-focus",
        "joint-stn-edsr-text-focus",
        # chapter 7's budget trend (their MSE stages are not shipped: only these are read)
        "stn-edsr-text-focus-4x",
        "stn-edsr-text-focus-16x",
        "tbsrn-text-focus-4x",
    ),
}
SHIPPED_BUDGET_BYTES = 40_000_000  # the whole shipped set, manifests included
REPOSITORY = Path(__file__).resolve().parents[1]


def recipe_names(session: Session) -> list[str]:
    """Every recipe of the session profile's tables, across families."""
    table = session.profile.recipe_table
    return [name for family in FAMILIES for name in family.recipes[table]]


def build_order(session: Session, names: Sequence[str] = ()) -> list[str]:
    """The named shipped runs (all of the profile's, when none are named), each after the
    shipped runs it depends on; a name the profile does not ship is an error."""
    shipped = SHIPPED_RUNS.get(session.profile.name, ())
    if not shipped:
        raise ValueError(
            f"profile {session.profile.name!r} ships no weights; these do: {list(SHIPPED_RUNS)}"
        )
    unknown = [name for name in names if name not in shipped]
    if unknown:
        raise ValueError(f"{unknown} not shipped for {session.profile.name!r}: {list(shipped)}")
    wanted = list(names or shipped)
    return [name for name in needed_runs(session, wanted) if name in wanted]


def remake_command(session: Session, name: str) -> str:
    """The command that re-makes one shipped file (recorded in its manifest)."""
    words = ["ocrsr", "weights", "build", "--profile", session.profile.name]
    if session.device.type != "cpu":
        words += ["--device", str(session.device)]
    return shlex.join([*words, name])


def git_commit() -> str:
    """The checkout's commit, with "-dirty" when the library or its pinned dependencies differ
    from it (the shipped files aside); "unknown" outside a git checkout (an installed package)."""
    if not (REPOSITORY / ".git").exists():
        return "unknown"
    try:
        head = git("rev-parse", "HEAD")
        changes = git("status", "--porcelain", "--", "ocrsr_lib", "pyproject.toml")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = [line for line in changes.splitlines() if "ocrsr_lib/shipped_weights/" not in line]
    return f"{head}-dirty" if changed else head


def git(*arguments: str) -> str:
    """The output of a git command run in the repository (raises when it fails)."""
    done = subprocess.run(
        ["git", *arguments], cwd=REPOSITORY, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def ship_run(session: Session, name: str, command: str) -> Path:
    """Train the run with its recipe (or read it from the cache; its shipped files are ignored,
    the runs it depends on come from the cache or from current shipped files, which are those
    recipes' own runs), write it as a shipped file with its manifest (tensors at the profile's
    weight storage, the ones the forward never reads left out), and remove the recipe's older
    shipped files."""
    if session.official:
        raise ValueError(
            f"shipped weights are made by the recipes alone, not from official files "
            f"({', '.join(session.official)}): unset OCRSR_OFFICIAL"
        )
    run = trained(session, name, use_shipped=False)
    if run.result.device and torch.device(run.result.device).type != session.device.type:
        raise ValueError(
            f"the cached run {run.checkpoint} was trained on {run.result.device}, not on "
            f"{session.device}: delete it, or build on {run.result.device}"
        )
    batch_size = recipe_for(session, name).train.batch_size
    manifest = {
        "recipe": name,
        "profile": session.profile.name,
        "key": run.key,
        "command": command,
        "commit": git_commit(),
        "seconds": run.result.seconds,
        "images_per_second": run.result.images_per_second(batch_size),
        "batch_size": batch_size,
        "steps": run.result.steps,
        "device": run.result.device or str(session.device),
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "history": history_of(run.result),
    }
    prefix = family_of(session, name).prefix
    folder = shipped_folder(session.profile.name)
    path = write_shipped(
        folder / shipped_name(prefix, name, run.key),
        run.model,
        manifest,
        session.profile.weight_storage,
        unused_tensor_names(recipe_for(session, name).model, run.model),
    )
    for old in shipped_manifests(session.profile.name):
        if old["recipe"] == name and old["file"] != path.name:
            remove_shipped(folder / old["file"])
    return path


def remove_shipped(path: Path) -> None:
    """Delete a shipped file and its manifest."""
    path.unlink(missing_ok=True)
    manifest_path(path).unlink(missing_ok=True)


def remove_unshipped(profile: str) -> list[str]:
    """Delete the shipped files of recipes the profile no longer ships; their names."""
    shipped = SHIPPED_RUNS.get(profile, ())
    removed = []
    for manifest in shipped_manifests(profile):
        if manifest["recipe"] not in shipped:
            remove_shipped(shipped_folder(profile) / manifest["file"])
            removed.append(manifest["file"])
    return removed


def shipped_bytes(profile: str) -> int:
    """The size of a profile's shipped set: weights and manifests."""
    folder = shipped_folder(profile)
    return sum(path.stat().st_size for path in folder.glob("*") if path.is_file())


def shipped_status(session: Session, manifest: dict) -> str:
    """ "current" when the manifest's recipe has its key in this session, "stale" when the
    recipe's key has changed, "gone" when the profile has no such recipe any more."""
    if manifest["recipe"] not in recipe_names(session):
        return "gone"
    return "current" if run_key(session, manifest["recipe"]) == manifest["key"] else "stale"


def stale_shipped(session: Session) -> list[str]:
    """The session profile's shipped files that no current recipe key matches, each line naming
    the recipe and the command that re-makes the file."""
    lines = []
    for manifest in shipped_manifests(session.profile.name):
        name, status = manifest["recipe"], shipped_status(session, manifest)
        if status == "gone":
            lines.append(
                f"{manifest['file']}: recipe {name!r} is gone from profile "
                f"{session.profile.name!r}; `ocrsr weights build --profile "
                f"{session.profile.name}` removes the file"
            )
        elif status == "stale":
            lines.append(
                f"{manifest['file']}: recipe {name!r} has key {run_key(session, name)} now, the "
                f"file {manifest['key']}; re-make it with `{manifest['command']}`"
            )
    return lines
