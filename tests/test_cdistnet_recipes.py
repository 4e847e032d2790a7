"""Cached CDistNet recipes: pretraining, fine-tuning from it on HR or an SR recipe's images."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ocrsr_lib import cdistnet_recipes, recipes
from ocrsr_lib.config import setup
from ocrsr_lib.train import TrainConfig


@pytest.fixture
def tiny_cdistnet(tiny_recipes, monkeypatch):
    tiny = TrainConfig(steps=2, batch_size=4, learning_rate=1e-3)
    recipe = cdistnet_recipes.CDistNetRecipe
    demo = {
        "pretrain": recipe("demo", tiny),
        "finetune-hr": recipe("demo", tiny, "hr", "pretrain"),
        "finetune-stn-edsr": recipe("demo", tiny, "stn-edsr", "pretrain", augment=False),
    }
    monkeypatch.setitem(cdistnet_recipes.CDISTNET_RECIPES, "demo", demo)
    return setup("demo", device="cpu", textzoom=tiny_recipes, verbose=False)


def test_fine_tuning_starts_from_the_cached_pretraining(tiny_cdistnet):
    session = tiny_cdistnet
    pretrained = cdistnet_recipes.trained_cdistnet(session, "pretrain")
    assert pretrained.checkpoint.is_file() and not pretrained.model.training
    assert pretrained.result.validations[-1]["validation"]["accuracy"] >= 0
    tuned = cdistnet_recipes.trained_cdistnet(session, "finetune-hr")
    assert len(tuned.result.losses) == 2 and tuned.images == "hr"
    again = cdistnet_recipes.trained_cdistnet(session, "finetune-hr")
    assert again.result.resumed_from == 2
    assert torch.equal(again.model.tgt_word_prj.weight, tuned.model.tgt_word_prj.weight)


def test_fine_tuning_on_sr_images_depends_on_the_sr_recipe(tiny_cdistnet, monkeypatch):
    session = tiny_cdistnet
    tuned = cdistnet_recipes.trained_cdistnet(session, "finetune-stn-edsr")
    assert isinstance(tuned.images, torch.nn.Module)
    assert recipes.checkpoint_path(session, "stn-edsr").is_file()
    before = cdistnet_recipes.cdistnet_checkpoint_path(session, "finetune-stn-edsr")
    hr_before = cdistnet_recipes.cdistnet_checkpoint_path(session, "finetune-hr")
    demo = dict(recipes.SR_RECIPES["demo"])
    demo["stn-edsr"] = replace(demo["stn-edsr"], loss="l1")
    monkeypatch.setitem(recipes.SR_RECIPES, "demo", demo)
    assert cdistnet_recipes.cdistnet_checkpoint_path(session, "finetune-stn-edsr") != before
    assert cdistnet_recipes.cdistnet_checkpoint_path(session, "finetune-hr") == hr_before


def test_unknown_recipes_and_sizes_are_refused(tiny_cdistnet):
    with pytest.raises(KeyError, match="no CDistNet recipe 'finetune-x'"):
        cdistnet_recipes.cdistnet_recipe_for(tiny_cdistnet, "finetune-x")
    with pytest.raises(ValueError, match="unknown CDistNet size 'huge'"):
        cdistnet_recipes.CDistNetRecipe("huge", TrainConfig(steps=1))


def test_every_profile_has_pretraining_and_the_four_fine_tunes():
    for profile in ("demo", "paper"):
        names = set(cdistnet_recipes.CDISTNET_RECIPES[profile])
        expected = {"pretrain", "finetune-hr", "finetune-bicubic"}
        expected |= {"finetune-stn-edsr-text-focus", "finetune-tbsrn-text-focus"}
        assert names == expected
