"""Judging claims: McNemar and paired PSNR tests on constructed data, each verdict rule on cases
made for each verdict, and the claims table."""

import math

import pytest
import torch

from ocrsr_lib.claims import (
    Claim,
    PairedTest,
    better_verdict,
    claims_markdown,
    mcnemar_test,
    not_worse_verdict,
    paired_psnr_test,
    small_change_verdict,
)


def test_mcnemar_counts_only_the_words_the_two_readings_disagree_on():
    labels = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
    first = ["a", "b", "c", "d", "e", "f", "x", "x", "x", "x"]  # 6 right
    second = ["a", "b", "x", "x", "x", "x", "g", "x", "x", "x"]  # 3 right: 4 vs 1 disagreements
    test = mcnemar_test(first, second, labels)
    assert test.difference == pytest.approx(30.0)  # (4 - 1) / 10 words, in points
    assert test.standard_error == pytest.approx(100 * math.sqrt(5) / 10)
    assert test.z == pytest.approx(3 / math.sqrt(5))
    assert mcnemar_test(first, first, labels).z == 0.0
    with pytest.raises(ValueError, match="3 and 2 words read for 10 labels"):
        mcnemar_test(first[:3], second[:2], labels)


def test_the_paired_psnr_test_is_the_mean_difference_over_its_standard_error():
    first = torch.tensor([20.0, 21.0, 22.0, 23.0])
    second = first - torch.tensor([0.5, 0.7, 0.3, 0.5])
    test = paired_psnr_test(first, second)
    assert test.difference == pytest.approx(0.5)
    expected = torch.tensor([0.5, 0.7, 0.3, 0.5]).std().item() / 2
    assert test.standard_error == pytest.approx(expected, rel=1e-5)
    assert paired_psnr_test(first, first).z == 0.0
    assert paired_psnr_test(first, first - 1).z == math.inf  # the same gain on every image
    with pytest.raises(ValueError, match="equally long 1-D PSNR vectors"):
        paired_psnr_test(first, second[:3])


@pytest.mark.parametrize(
    "difference, error, paper, verdict",
    [
        (5.0, 1.0, 6.9, "reproduces"),
        (-5.0, 1.0, 6.9, "reversed"),
        (1.0, 1.0, 6.9, "within noise"),
        (-1.9, 1.0, 6.9, "within noise"),
        (-3.0, 1.0, -0.5, "reproduces"),  # the paper's difference is negative too
    ],
)
def test_a_better_claim_reproduces_reverses_or_stays_within_noise(
    difference, error, paper, verdict
):
    assert better_verdict(PairedTest(difference, error), paper) == verdict


@pytest.mark.parametrize(
    "difference, error, verdict",
    [
        (0.3, 1.0, "reproduces"),
        (0.0, 0.0, "reproduces"),
        (-1.0, 1.0, "within noise"),
        (-3.0, 1.0, "does not reproduce"),
    ],
)
def test_a_not_worse_claim(difference, error, verdict):
    assert not_worse_verdict(PairedTest(difference, error)) == verdict


@pytest.mark.parametrize(
    "difference, error, verdict",
    [
        (-0.05, 0.02, "reproduces"),  # -0.09 .. -0.01 inside +-0.2
        (-0.5, 0.05, "does not reproduce"),  # -0.6 .. -0.4 outside
        (0.5, 0.1, "does not reproduce"),
        (-0.15, 0.05, "within noise"),  # -0.25 .. -0.05 straddles the margin
    ],
)
def test_a_small_change_claim(difference, error, verdict):
    assert small_change_verdict(PairedTest(difference, error)) == verdict


def test_claims_take_their_kinds_rule_and_print_as_a_table():
    claims = [
        Claim("EDSR beats TBSRN", "better", "points", PairedTest(-4.0, 1.0), 1.23),
        Claim("two stages beat one", "better", "dB", PairedTest(0.3, 0.1), None),
        Claim("7 bits as good as float", "not worse", "points", PairedTest(-0.5, 1.0), 0.2),
        Claim("PSNR barely moves", "small change", "dB", PairedTest(-0.01, 0.01), -0.19),
    ]
    assert [claim.verdict for claim in claims] == [
        "reversed",
        "reproduces",
        "within noise",
        "reproduces",
    ]
    lines = claims_markdown(claims).splitlines()
    assert lines[0] == "| claim of the paper | ours | z | paper | verdict |"
    assert lines[2] == "| EDSR beats TBSRN | -4.00 points | -4.0 | +1.23 points | reversed |"
    assert lines[3].endswith("| – | reproduces |")
    with pytest.raises(ValueError, match="unknown claim kind 'equal'"):
        Claim("x", "equal", "dB", PairedTest(0, 1), None)
