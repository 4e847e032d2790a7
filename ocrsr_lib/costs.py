"""What a chapter uses and what remaking it costs: for each trained run it needs (and the runs
those depend on), where the weights come from now (the cache, a shipped file or training), the
training time and device the shipped manifest records, and what a retrain would take on a GPU
at the training rates recorded in `benchmarks/results` (a lent H200)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ocrsr_lib.checkpoints import load_checkpoint
from ocrsr_lib.config import Session
from ocrsr_lib.records import RESULTS, recorded_machine, recorded_rates
from ocrsr_lib.runs import checkpoint_path, dependencies, needed_runs, recipe_for, shipped_file
from ocrsr_lib.runs.shipped import read_manifest
from ocrsr_lib.tables import markdown_table

GPU_RECORD = RESULTS / "2026-11-26-h200.md"
GPU_SECTION = "run_benchmarks.py"
# the recorded training rate (images/s) that stands for each kind of run, per recipe table;
# SR losses that need the guide (text-focus and its ablations) train at the text-focus rate
GUIDED_PAPER = "SR training (text-focus, paper guide), STN+EDSR paper, batch 32"
GPU_RATE_ROWS = {
    ("demo", "stn-edsr", "mse"): "SR training (MSE), STN+EDSR demo, batch 16",
    ("demo", "edsr", "mse"): "SR training (MSE), STN+EDSR demo, batch 16",
    ("demo", "stn-edsr", "guided"): "SR training (text-focus, demo guide), STN+EDSR demo, batch 16",
    ("demo", "tbsrn", "mse"): "SR training (MSE), TBSRN demo, batch 16",
    ("demo", "tbsrn", "guided"): "SR training (text-focus, demo guide), TBSRN demo, batch 16",
    ("demo", "cdistnet", ""): "CDistNet training, demo, batch 32",
    ("paper", "stn-edsr", "mse"): "SR training (MSE), STN+EDSR paper, batch 32",
    (
        "paper",
        "stn-edsr",
        "guided",
    ): "SR training (text-focus, paper guide), STN+EDSR paper, batch 32",
    ("paper", "cdistnet", ""): "CDistNet training, paper, batch 32",
}


# where a run's weights come from; "cache, resumes" is a checkpoint of an interrupted run; "only
# to retrain" is a dependency that nothing loads now (every run built on it is available)
SOURCES = ("cache", "cache, resumes", "shipped", "official", "trained when run", "only to retrain")
AVAILABLE = ("cache", "shipped", "official")


@dataclass(frozen=True)
class RunCost:
    """One trained run a chapter needs: where its weights come from and what training costs."""

    recipe: str
    source: str  # one of SOURCES
    images: int | None  # training images (steps x batch), when known
    seconds: float | None  # recorded training time (shipped runs)
    device: str  # where those seconds were measured ("" when not recorded)
    gpu_seconds: float | None  # the same images at the recorded GPU rate, when one is recorded


def gpu_rate(session: Session, name: str) -> float | None:
    """The recorded GPU training rate (images/s) for a run of this kind, None if none is."""
    recipe = recipe_for(session, name)
    loss = ("guided" if recipe.guided else "mse") if hasattr(recipe, "guided") else ""
    row = GPU_RATE_ROWS.get((session.profile.recipe_table, recipe.model, loss))
    return None if row is None else recorded_rates(GPU_RECORD, GPU_SECTION)[row]


def run_cost(session: Session, name: str) -> RunCost:
    """Where run `name`'s weights come from in this session and what training them costs."""
    recipe = recipe_for(session, name)
    shipped = shipped_file(session, name)
    manifest = read_manifest(shipped) if shipped is not None else None
    steps = manifest["steps"] if manifest else recipe.train.steps
    batch = manifest["batch_size"] if manifest else recipe.train.batch_size
    images = steps * batch if steps else None
    rate = gpu_rate(session, name)
    path = checkpoint_path(session, name)
    if name in session.official:
        source = "official"
    elif path.exists():
        checkpoint = load_checkpoint(path)
        finished = checkpoint["step"] >= checkpoint["total_steps"]
        source = "cache" if finished else "cache, resumes"
    else:
        source = "shipped" if shipped is not None else "trained when run"
    return RunCost(
        recipe=name,
        source=source,
        images=images,
        seconds=manifest["seconds"] if manifest else None,
        device=manifest["device"] if manifest else "",
        gpu_seconds=images / rate if images and rate else None,
    )


def chapter_costs(session: Session, names: Sequence[str]) -> list[RunCost]:
    """The cost of every run the chapter needs, dependencies included; one that would train but
    that only available runs (cached, shipped or official) depend on is "only to retrain"."""
    costs = {name: run_cost(session, name) for name in needed_runs(session, names)}
    loaded: set[str] = set()

    def visit(name: str) -> None:
        if name not in loaded:
            loaded.add(name)
            if costs[name].source not in AVAILABLE:
                for dependency in dependencies(session, name):
                    visit(dependency)

    for name in names:
        visit(name)
    return [
        replace(cost, source="only to retrain")
        if name not in loaded and cost.source == "trained when run"
        else cost
        for name, cost in costs.items()
    ]


def minutes(seconds: float | None) -> str:
    return "not recorded" if seconds is None else f"{seconds / 60:.1f} min"


def costs_table(costs: Sequence[RunCost]) -> str:
    """A Markdown table of the runs, their source and their training costs, with totals."""
    rows = [
        [
            cost.recipe,
            cost.source,
            "" if cost.images is None else f"{cost.images:,d}",
            minutes(cost.seconds) + (f" ({cost.device})" if cost.device else ""),
            minutes(cost.gpu_seconds),
        ]
        for cost in costs
    ]
    recorded = [cost.seconds for cost in costs if cost.seconds is not None]
    gpu = [cost.gpu_seconds for cost in costs if cost.gpu_seconds is not None]
    rows.append(["all", "", "", minutes(sum(recorded)), minutes(sum(gpu))])
    header = ["run", "weights from", "training images", "training time", "on a GPU (est.)"]
    return markdown_table(header, rows)


def gpu_record_machine() -> str:
    """Which machine the GPU rates were recorded on (the record's heading)."""
    return recorded_machine(GPU_RECORD)


def costs_markdown(session: Session, names: Sequence[str]) -> str:
    """What a chapter opens with: the runs it uses (dependencies included), where each one's
    weights come from in this session, and what retraining them all costs."""
    if not names:
        return "This chapter loads no trained weights and trains nothing."
    costs = chapter_costs(session, names)
    sources = {source: sum(cost.source == source for cost in costs) for source in SOURCES}
    found = ", ".join(f"{count} {source}" for source, count in sources.items() if count)
    recorded = [cost.seconds for cost in costs if cost.seconds is not None]
    gpu = [cost.gpu_seconds for cost in costs if cost.gpu_seconds is not None]
    retraining = (
        f"Retraining them (`OCRSR_RETRAIN=1`) took {minutes(sum(recorded))} when the shipped "
        f"weights were made ({len(recorded)} of {len(costs)} runs recorded)"
        if recorded
        else "No training time is recorded for them (no shipped weights)"
    )
    return (
        f"This chapter uses {len(costs)} trained runs ({found}). {retraining}; on one GPU the "
        f"same training images take about {minutes(sum(gpu))} at the rates recorded on "
        f"{gpu_record_machine()} ({len(gpu)} of {len(costs)} runs have a recorded rate).\n\n"
        + costs_table(costs)
    )
