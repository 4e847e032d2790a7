"""Judging the paper's claims on the same test words: McNemar's test for accuracy (the words
only one side reads right), a paired test on per-image PSNR, and a fixed rule from the test to
the verdict ("reproduces", "does not reproduce", "within noise", "reversed"), so that no verdict
is written by hand.

Explained in chapter 6.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from ocrsr_lib.evaluation import paired_difference
from ocrsr_lib.tables import markdown_table

VERDICTS = ("reproduces", "does not reproduce", "within noise", "reversed")
SIGNIFICANT_Z = 2.0  # |z| at least this: beyond noise (about 95 % two-sided)
# a "small" PSNR change: the paper's own largest change under quantization (0.19 dB), rounded
# up; fixed from the paper, not from our measurements
SMALL_PSNR_CHANGE_DB = 0.2
KINDS = ("better", "not worse", "small change")


@dataclass(frozen=True)
class PairedTest:
    """First minus second on the same items (accuracy points or dB), its standard error and
    z = difference / standard error."""

    difference: float
    standard_error: float

    @property
    def z(self) -> float:
        if self.standard_error == 0:
            return 0.0 if self.difference == 0 else math.copysign(math.inf, self.difference)
        return self.difference / self.standard_error


def mcnemar_test(first: Sequence[str], second: Sequence[str], labels: Sequence[str]) -> PairedTest:
    """Accuracy of two readings of the same words, in points: the difference is (only first
    right - only second right) / words, its standard error sqrt(disagreements) / words."""
    only_first, only_second, _ = paired_difference(first, second, labels)
    words = len(labels)
    return PairedTest(
        100 * (only_first - only_second) / words, 100 * (only_first + only_second) ** 0.5 / words
    )


def paired_psnr_test(first: torch.Tensor, second: torch.Tensor) -> PairedTest:
    """Per-image PSNR (dB) of two SR models on the same images: the mean difference and the
    standard error of that mean."""
    if first.shape != second.shape or first.dim() != 1 or len(first) < 2:
        raise ValueError(
            f"need two equally long 1-D PSNR vectors of 2 images or more, got "
            f"{tuple(first.shape)} and {tuple(second.shape)}"
        )
    differences = (first - second).double()
    return PairedTest(
        differences.mean().item(), (differences.std() / len(differences) ** 0.5).item()
    )


def better_verdict(test: PairedTest, paper_direction: float) -> str:
    """A claim that the first beats the second (the paper's difference has the sign of
    `paper_direction`): beyond noise the same way "reproduces", the other way "reversed"."""
    if abs(test.z) < SIGNIFICANT_Z:
        return "within noise"
    return "reproduces" if test.difference * paper_direction > 0 else "reversed"


def not_worse_verdict(test: PairedTest) -> str:
    """A claim that the first is at least as good as the second: "reproduces" when it is,
    "does not reproduce" when it is worse beyond noise, else "within noise"."""
    if test.difference >= 0:
        return "reproduces"
    return "does not reproduce" if test.z <= -SIGNIFICANT_Z else "within noise"


def small_change_verdict(test: PairedTest, margin: float = SMALL_PSNR_CHANGE_DB) -> str:
    """A claim that the change is small (within +-margin): "reproduces" when the interval
    difference +- 2 standard errors lies inside, "does not reproduce" when it lies entirely
    outside, else "within noise"."""
    low = test.difference - SIGNIFICANT_Z * test.standard_error
    high = test.difference + SIGNIFICANT_Z * test.standard_error
    if -margin <= low and high <= margin:
        return "reproduces"
    if low > margin or high < -margin:
        return "does not reproduce"
    return "within noise"


@dataclass(frozen=True)
class Claim:
    """One claim of the paper, measured: what it says, its kind and unit, our paired test and
    the paper's difference (None where the paper gives no number)."""

    statement: str
    kind: str  # one of KINDS
    unit: str  # "points" or "dB"
    ours: PairedTest
    paper: float | None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown claim kind {self.kind!r}; choose one of {KINDS}")

    @property
    def verdict(self) -> str:
        """The rule of the claim's kind applied to our test (a "better" claim without a paper
        number means the first side is better)."""
        if self.kind == "better":
            return better_verdict(self.ours, 1.0 if self.paper is None else self.paper)
        if self.kind == "not worse":
            return not_worse_verdict(self.ours)
        return small_change_verdict(self.ours)


def claims_markdown(claims: Iterable[Claim]) -> str:
    """The claims as a table: statement, our difference and z, the paper's, the verdict."""
    header = ["claim of the paper", "ours", "z", "paper", "verdict"]
    rows = [
        [
            claim.statement,
            f"{claim.ours.difference:+.2f} {claim.unit}",
            f"{claim.ours.z:+.1f}",
            "–" if claim.paper is None else f"{claim.paper:+.2f} {claim.unit}",
            claim.verdict,
        ]
        for claim in claims
    ]
    return markdown_table(header, rows)
