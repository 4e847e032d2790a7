"""Chapter 7's budget trend: the scaled recipes, the training-image count, the claims judged at
every budget and the PSNR of bicubic upscaling on the scored words."""

import pytest
import torch

from ocrsr_lib import shipping, trend
from ocrsr_lib.claims import mcnemar_test
from ocrsr_lib.config import setup
from ocrsr_lib.runs import run_key
from ocrsr_lib.runs.sr import BUDGET_MULTIPLES, SR_RECIPES, budget_name, scaled
from ocrsr_lib.train import TrainConfig


def test_a_budget_multiplies_both_text_stages_and_nothing_else():
    demo = SR_RECIPES["demo"]
    for model, multiples in BUDGET_MULTIPLES.items():
        base_first, base_second = demo[model], demo[budget_name(model, 1)]
        for multiple in multiples[1:]:
            first = demo[budget_name(model, multiple, text_focus=False)]
            second = demo[budget_name(model, multiple)]
            for scaled_recipe, base in ((first, base_first), (second, base_second)):
                assert scaled_recipe.train.steps == multiple * base.train.steps
                assert scaled_recipe.train.warmup_steps == multiple * base.train.warmup_steps
                assert scaled_recipe.train.batch_size == base.train.batch_size
                assert scaled_recipe.train.learning_rate == base.train.learning_rate
                assert (scaled_recipe.model, scaled_recipe.size, scaled_recipe.loss) == (
                    base.model,
                    base.size,
                    base.loss,
                )
            assert first.start_from == base_first.start_from  # the shared non-text pretraining
            assert second.start_from == budget_name(model, multiple, text_focus=False)


def test_the_demo_budget_is_1x_and_every_larger_one_ships_its_text_focus_run():
    assert budget_name("stn-edsr", 1) == "stn-edsr-text-focus"
    assert budget_name("tbsrn", 4) == "tbsrn-text-focus-4x"
    assert budget_name("stn-edsr", 16, text_focus=False) == "stn-edsr-16x"
    for model, multiples in BUDGET_MULTIPLES.items():
        assert multiples[0] == 1
        for multiple in multiples:
            assert budget_name(model, multiple) in shipping.SHIPPED_RUNS["demo"]


def test_scaled_keeps_the_schedule_shape():
    train = TrainConfig(steps=10, warmup_steps=2, validate_every=5, schedule="cosine")
    four = scaled(train, 4)
    assert (four.steps, four.warmup_steps, four.validate_every) == (40, 8, 20)
    assert four.learning_rate_at(20, 40) == pytest.approx(train.learning_rate_at(5, 10))


def test_budgets_have_their_own_keys_and_count_text_images_only():
    session = setup("demo", device="cpu", verbose=False)
    keys = {run_key(session, budget_name("stn-edsr", m)) for m in BUDGET_MULTIPLES["stn-edsr"]}
    assert len(keys) == len(BUDGET_MULTIPLES["stn-edsr"])
    one = trend.training_images(session, "stn-edsr-text-focus")
    assert one == 400 * 16 + 200 * 16  # the MSE stage, then text-focus; not edsr-natural
    assert trend.training_images(session, "stn-edsr-text-focus-4x") == 4 * one
    assert trend.training_images(session, "tbsrn-text-focus") == 2400 * 4 + 400 * 8


def point(model: str, multiple: int, readings: list[str], psnr: list[float], bicubic, labels):
    gaps = {"bicubic": mcnemar_test(readings, bicubic, labels)}
    return trend.BudgetPoint(model, multiple, "r", 1, torch.tensor(psnr), readings, 0.0, gaps)


def test_trend_claims_judge_every_budget_and_edsr_against_tbsrn_where_both_trained():
    labels = [f"w{index}" for index in range(40)]
    bicubic = ["x"] * 20 + labels[20:]  # reads half
    better = list(labels)  # reads all: 20 words more
    worse = ["x"] * 40  # reads none: 20 words fewer
    psnr_low = [20.0 + 0.01 * (index % 3) for index in range(40)]
    psnr_high = [value + 0.5 for value in psnr_low]
    points = [
        point("stn-edsr", 1, bicubic, psnr_low, bicubic, labels),
        point("stn-edsr", 4, better, psnr_high, bicubic, labels),
        point("stn-edsr", 16, better, psnr_high, bicubic, labels),
        point("tbsrn", 1, worse, psnr_high, bicubic, labels),
        point("tbsrn", 4, worse, psnr_low, bicubic, labels),
    ]
    claims = trend.trend_claims(None, points)
    verdicts = [claim.verdict for claim in claims]
    assert verdicts == [
        "within noise",  # reads what bicubic reads
        "reproduces",
        "reproduces",
        "reversed",
        "reversed",
        "reversed",  # 1x: EDSR 0.5 dB below TBSRN
        "reproduces",  # 4x: 0.5 dB above
    ]
    assert claims[1].ours.difference == pytest.approx(50.0)
    assert claims[-1].unit == "dB" and claims[-1].ours.difference == pytest.approx(0.5)
    assert claims[-1].paper == pytest.approx(0.27)


def test_the_paper_profile_has_its_own_budget_only_and_counts_epochs():
    session = setup("paper", device="cpu", verbose=False)
    assert trend.budgets(session) == [("stn-edsr", 1), ("tbsrn", 1)]


def test_bicubic_psnr_covers_every_scored_word(tiny_recipes):
    session = setup("demo", device="cpu", textzoom=tiny_recipes, verbose=False)
    values = trend.psnr_per_image(session, "bicubic")
    assert values.shape == (12,)  # 4 words in each of the three test splits
    assert torch.isfinite(values).all() and (values > 5).all()


def test_recognizer_curves_are_each_recognizers_validations_in_percent(monkeypatch):
    from types import SimpleNamespace

    validations = [
        {"step": 500, "validation": {"accuracy": 0.25}},
        {"step": 1000, "validation": {"accuracy": 0.5}},
    ]
    run = SimpleNamespace(result=SimpleNamespace(validations=validations))
    monkeypatch.setattr(trend, "trained", lambda session, name: run)
    curves = trend.recognizer_curves(None)
    assert list(curves) == ["guide", "judge", "pretrain"]
    assert curves["guide"] == [(500, 25.0), (1000, 50.0)]
