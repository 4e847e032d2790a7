"""Named SR recipes: validation held out of training, keys that follow the recipe, caching."""

import math
from dataclasses import replace

import pytest
import torch

from ocrsr_lib import recipes
from ocrsr_lib.config import setup
from ocrsr_lib.models import EDSR, RectifiedSR
from ocrsr_lib.train import TrainConfig


def test_hold_out_is_disjoint_reproducible_and_checked():
    data = list(range(50))
    train, validation = recipes.hold_out(data, 10, seed=3)
    assert len(train) == 40 and len(validation) == 10
    assert set(train.indices).isdisjoint(validation.indices)
    assert recipes.hold_out(data, 10, seed=3)[1].indices == validation.indices
    with pytest.raises(ValueError, match="cannot hold out 50 of 50"):
        recipes.hold_out(data, 50)


def test_every_recipe_builds_its_model_and_bad_recipes_are_refused():
    for profile in recipes.SR_RECIPES.values():
        for recipe in profile.values():
            if recipe.size == "demo":
                model = recipes.build_sr_model(recipe.model, recipe.size)
                assert model(torch.rand(2, 3, 16, 64)).shape == (2, 3, 32, 128)
    config = TrainConfig(steps=1)
    with pytest.raises(ValueError, match="unknown SR model 'srgan'"):
        recipes.SRRecipe("srgan", "demo", "mse", config)
    with pytest.raises(ValueError, match="unknown edsr size 'huge'"):
        recipes.SRRecipe("edsr", "huge", "mse", config)
    with pytest.raises(ValueError, match="unknown loss 'ssim'"):
        recipes.SRRecipe("edsr", "demo", "ssim", config)


@pytest.fixture
def tiny_session(tiny_recipes):
    return setup("demo", device="cpu", textzoom=tiny_recipes, verbose=False)


def test_trained_recipes_are_cached_and_start_from_their_pretraining(tiny_session):
    first = recipes.trained_sr(tiny_session, "stn-edsr")
    assert isinstance(first.model, RectifiedSR) and not first.model.training
    assert first.checkpoint.is_file()
    assert len(first.result.losses) == 4
    assert first.result.validations[-1]["validation"]["images"] == 12
    pretrained = recipes.checkpoint_path(tiny_session, "edsr-natural")
    assert pretrained.is_file()
    again = recipes.trained_sr(tiny_session, "stn-edsr")
    assert again.result.resumed_from == 4
    pairs = zip(first.model.state_dict().values(), again.model.state_dict().values(), strict=True)
    for a, b in pairs:
        assert torch.equal(a, b)
    reloaded = recipes.load_trained_weights(RectifiedSR(EDSR()), first.checkpoint)
    assert torch.equal(reloaded.sr.tail[-1].weight, first.model.sr.tail[-1].weight)


def test_a_recipe_trains_to_the_same_weights_whatever_ran_before(tiny_session, tmp_path):
    first = recipes.trained_sr(tiny_session, "edsr").model.state_dict()
    recipes.checkpoint_path(tiny_session, "edsr").unlink()
    torch.rand(1000)  # another chapter or command consumed random numbers in between
    second = recipes.trained_sr(tiny_session, "edsr").model.state_dict()
    for name, weight in first.items():
        assert torch.equal(weight, second[name]), name


def test_a_changed_recipe_gets_a_new_checkpoint(tiny_session, monkeypatch):
    before = recipes.checkpoint_path(tiny_session, "stn-edsr")
    demo = dict(recipes.SR_RECIPES["demo"])
    demo["edsr-natural"] = replace(demo["edsr-natural"], natural_pairs=20)
    monkeypatch.setitem(recipes.SR_RECIPES, "demo", demo)
    assert recipes.checkpoint_path(tiny_session, "stn-edsr") != before
    with pytest.raises(KeyError, match="no SR recipe 'tbsrn-x'"):
        recipes.recipe_for(tiny_session, "tbsrn-x")


def test_a_text_focus_recipe_trains_with_the_guide_and_its_confusion_table(
    tiny_session, monkeypatch
):
    tiny = TrainConfig(steps=2, batch_size=4, learning_rate=1e-3)
    monkeypatch.setitem(
        recipes.RECOGNIZER_RECIPES, "demo", {"guide": recipes.RecognizerRecipe("demo", tiny)}
    )
    demo = dict(recipes.SR_RECIPES["demo"])
    demo["focus"] = recipes.SRRecipe("stn-edsr", "demo", "text-focus", tiny, start_from="stn-edsr")
    monkeypatch.setitem(recipes.SR_RECIPES, "demo", demo)
    before = recipes.checkpoint_path(tiny_session, "focus")
    run = recipes.trained_sr(tiny_session, "focus")
    assert len(run.result.losses) == 2 and all(map(math.isfinite, run.result.losses))
    counts = recipes.guide_confusions(tiny_session, "guide")
    assert counts.sum() > 0  # every character of the train split, read by the guide
    loss = recipes.loss_for(tiny_session, demo["focus"])
    assert loss.weights.position == 10.0 and loss.weights.content == 0.0005
    assert torch.equal(loss.weight_table, recipes.guide_weight_table(tiny_session, "guide"))
    # a retrained guide makes a new checkpoint name for every recipe it guides
    monkeypatch.setitem(
        recipes.RECOGNIZER_RECIPES,
        "demo",
        {"guide": recipes.RecognizerRecipe("demo", replace(tiny, steps=3))},
    )
    assert recipes.checkpoint_path(tiny_session, "focus") != before
    with pytest.raises(ValueError, match="unknown loss 'ocr'"):
        recipes.SRRecipe("edsr", "demo", "ocr", tiny)


def test_the_smoke_profile_trains_the_demo_recipes_briefly_in_its_own_cache(tmp_path, monkeypatch):
    from ocrsr_lib.cdistnet_recipes import CDISTNET_RECIPES, cdistnet_recipe_for

    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path))
    smoke = setup("smoke", verbose=False)
    demo = recipes.SR_RECIPES["demo"]["stn-edsr"]
    shortened = recipes.recipe_for(smoke, "stn-edsr")
    assert shortened.train.steps == round(demo.train.steps * 0.05)
    assert replace(shortened, train=demo.train) == demo
    guide = recipes.recognizer_recipe_for(smoke, "guide")
    assert guide.train.steps == round(recipes.RECOGNIZER_RECIPES["demo"]["guide"].train.steps / 20)
    pretrain = cdistnet_recipe_for(smoke, "pretrain")
    assert pretrain.train.steps == round(CDISTNET_RECIPES["demo"]["pretrain"].train.steps / 20)
    assert smoke.path("checkpoints") == tmp_path / "smoke" / "checkpoints"
