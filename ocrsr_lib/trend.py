"""The budget trend: the paper's two SR models trained for 1, 4 and 16 times the demo's steps,
each read by one recognizer that never saw an SR image, so that a reader can tell a claim that
fails for lack of training from one that more training does not rescue.

Explained in chapter 7.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch

from ocrsr_lib.claims import Claim, PairedTest, mcnemar_test, paired_psnr_test
from ocrsr_lib.config import Session
from ocrsr_lib.data import TEST_DIFFICULTIES, scoring_splits
from ocrsr_lib.evaluation import accuracy_of
from ocrsr_lib.metrics import psnr
from ocrsr_lib.models import Bicubic
from ocrsr_lib.paper import PAPER_TABLE_2
from ocrsr_lib.pipelines import cdistnet_readings, hr_stack, sr_images, upscale_split
from ocrsr_lib.results import flat_readings, scored_labels
from ocrsr_lib.runs import recipe_for, trained
from ocrsr_lib.runs.data import text_train_and_validation
from ocrsr_lib.runs.sr import BUDGET_MULTIPLES, budget_name
from ocrsr_lib.shipping import recipe_names
from ocrsr_lib.tables import markdown_table

# the recognizer that judges legibility at every budget: CDistNet fine-tuned on HR words, which
# never read an SR image (the claims' "same reader")
TREND_READER = "finetune-hr"
MODEL_NAMES = {"stn-edsr": "STN+EDSR", "tbsrn": "TBSRN"}
# the recognizers whose training curves show how far their budgets took them, with their roles
RECOGNIZERS = {
    "guide": "guide (steers the text-focus loss)",
    "judge": "judge (chapter 3)",
    "pretrain": "CDistNet pretraining",
}


@dataclass(frozen=True)
class BudgetPoint:
    """One SR model at one budget: what it trained on, its PSNR and what the reader made of it."""

    model: str  # a key of BUDGET_MULTIPLES
    multiple: int
    recipe: str
    images: int  # training images of its two text stages (MSE, then text-focus)
    psnr_per_image: torch.Tensor
    readings: list[str]
    accuracy: float  # word accuracy (%) of the reader on the SR images
    gaps: dict[str, PairedTest]  # paired differences (points) from "bicubic" and "lr" images

    @property
    def psnr(self) -> float:
        return self.psnr_per_image.mean().item()


def training_images(session: Session, name: str) -> int:
    """Images a text-focus recipe and the MSE recipe it starts from trained on (steps x batch)."""
    total = 0
    while name is not None:
        recipe = recipe_for(session, name)
        if getattr(recipe, "data", "text") != "text":
            break  # the shared non-text pretraining is not part of the budget
        steps = recipe.train.steps
        if steps is None:  # a recipe counted in epochs (the paper profile's)
            steps = recipe.train.total_steps(len(text_train_and_validation(session)[0]))
        total += steps * recipe.train.batch_size
        name = recipe.start_from
    return total


def psnr_per_image(session: Session, name: str) -> torch.Tensor:
    """Per-image PSNR (dB) of an SR run's images of the scored test words, or of bicubic
    upscaling ("bicubic"), in reading order."""
    splits = scoring_splits(session)
    if name == "bicubic":
        images = {
            split: upscale_split(Bicubic(), splits[split], session.device) for split in splits
        }
    else:
        images = sr_images(session, name)
    return torch.cat([psnr(images[split], hr_stack(splits[split])) for split in TEST_DIFFICULTIES])


def budgets(session: Session) -> list[tuple[str, int]]:
    """(model, multiple) of every budget the session's profile has recipes for (the demo: all of
    `BUDGET_MULTIPLES`; the paper profile: its own budget alone)."""
    names = recipe_names(session)
    return [
        (model, multiple)
        for model, multiples in BUDGET_MULTIPLES.items()
        for multiple in multiples
        if budget_name(model, multiple) in names
    ]


def budget_trend(session: Session) -> list[BudgetPoint]:
    """Every SR model at every budget of the profile (`budgets`; shipped runs, else trained),
    read by `TREND_READER` with the book's beam, with its McNemar differences from the same
    reader's bicubic and LR readings."""
    labels, baselines = scored_labels(session), reader_baselines(session)
    points = []
    for model, multiple in budgets(session):
        name = budget_name(model, multiple)
        readings = flat_readings(cdistnet_readings(session, TREND_READER, name))
        gaps = {
            images: mcnemar_test(readings, baseline, labels)
            for images, baseline in baselines.items()
        }
        points.append(
            BudgetPoint(
                model,
                multiple,
                name,
                training_images(session, name),
                psnr_per_image(session, name),
                readings,
                100 * accuracy_of(readings, labels),
                gaps,
            )
        )
    return points


def reader_baselines(session: Session) -> dict[str, list[str]]:
    """What the trend's reader reads from bicubic-upscaled and from LR images."""
    return {
        images: flat_readings(cdistnet_readings(session, TREND_READER, images))
        for images in ("bicubic", "lr")
    }


def trend_markdown(session: Session, points: list[BudgetPoint]) -> str:
    """A row per model and budget: training images, PSNR, the reader's accuracy, and the paired
    differences from bicubic and from LR images (points, z)."""
    rows = [
        [
            MODEL_NAMES[point.model],
            f"{point.multiple}×",
            f"{point.images:,}",
            f"{point.psnr:.2f}",
            f"{point.accuracy:.1f}",
            *(f"{test.difference:+.2f} (z {test.z:+.1f})" for test in point.gaps.values()),
        ]
        for point in points
    ]
    header = ["SR model", "budget", "training images", "PSNR (dB)", "accuracy %"]
    return markdown_table([*header, "SR − bicubic (pt)", "SR − LR (pt)"], rows)


def trend_claims(session: Session, points: list[BudgetPoint]) -> list[Claim]:
    """The claims the trend can judge at every budget: SR beats bicubic for a reader never
    trained on SR (each model), and EDSR beats TBSRN in PSNR (at each budget both reach)."""
    claims = [
        Claim(
            f"{MODEL_NAMES[point.model]} {point.multiple}×: SR beats bicubic, same reader never "
            "trained on SR",
            "better",
            "points",
            point.gaps["bicubic"],
            None,
        )
        for point in points
    ]
    by_budget = {(point.model, point.multiple): point for point in points}
    paper = PAPER_TABLE_2["EDSR"]["none"]["psnr"] - PAPER_TABLE_2["TBSRN"]["none"]["psnr"]
    for (model, multiple), edsr in by_budget.items():
        tbsrn = by_budget.get(("tbsrn", multiple))
        if model == "stn-edsr" and tbsrn is not None:
            test = paired_psnr_test(edsr.psnr_per_image, tbsrn.psnr_per_image)
            claims.append(
                Claim(f"{multiple}×: EDSR beats TBSRN in PSNR", "better", "dB", test, paper)
            )
    return claims


def trend_figure(session: Session, points: list[BudgetPoint]) -> plt.Figure:
    """PSNR and the reader's accuracy against training images (log scale), per SR model, with
    the levels of bicubic (and of LR images, for accuracy) as lines."""
    labels, baselines = scored_labels(session), reader_baselines(session)
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    for model, name in MODEL_NAMES.items():
        mine = [point for point in points if point.model == model]
        images = [point.images for point in mine]
        left.plot(images, [point.psnr for point in mine], "o-", label=name)
        right.plot(images, [point.accuracy for point in mine], "o-", label=name)
    bicubic_psnr = psnr_per_image(session, "bicubic").mean().item()
    left.axhline(bicubic_psnr, color="grey", linestyle="--", label="bicubic")
    for images, style, label in (("bicubic", "--", "bicubic"), ("lr", ":", "LR")):
        level = 100 * accuracy_of(baselines[images], labels)
        right.axhline(level, color="grey", linestyle=style, label=label)
    for axis, title in ((left, "PSNR (dB)"), (right, f"accuracy read by {TREND_READER} (%)")):
        axis.set_xscale("log")
        axis.set_xlabel("training images of the text stages")
        axis.set_title(title, fontsize=10)
        axis.legend(fontsize=9)
    return figure


def recognizer_curves(session: Session) -> dict[str, list[tuple[int, float]]]:
    """Each recognizer's validation accuracy (%) over its training steps, as recorded."""
    return {
        name: [
            (report["step"], 100 * report["validation"]["accuracy"])
            for report in trained(session, name).result.validations
        ]
        for name in RECOGNIZERS
    }


def recognizer_curves_figure(session: Session) -> plt.Figure:
    """The recognizers' validation accuracy against training steps."""
    figure, axis = plt.subplots(figsize=(6, 3.2), layout="constrained")
    for name, curve in recognizer_curves(session).items():
        steps, accuracy = zip(*curve, strict=True)
        axis.plot(steps, accuracy, "o-", label=RECOGNIZERS[name])
    axis.set_xlabel("training step (batches of 32)")
    axis.set_ylabel("validation accuracy (%)")
    axis.set_ylim(0, 100)
    axis.legend(fontsize=9)
    return figure
