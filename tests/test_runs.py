"""Trained runs: one recipe lookup and one trained-run path for SR models, the guide and
CDistNet; keys computed from pure data; caching, resuming and starting points."""

import math
from dataclasses import replace

import pytest
import torch

from ocrsr_lib import runs
from ocrsr_lib.config import setup
from ocrsr_lib.models import RectifiedSR, create_model
from ocrsr_lib.runs import cdistnet, guide, sr
from ocrsr_lib.runs.data import hold_out, recognizer_train_and_validation
from ocrsr_lib.runs.shipped import round_to_storage
from ocrsr_lib.train import TrainConfig


def test_hold_out_is_disjoint_reproducible_and_checked():
    data = list(range(50))
    train, validation = hold_out(data, 10, seed=3)
    assert len(train) == 40 and len(validation) == 10
    assert set(train.indices).isdisjoint(validation.indices)
    assert hold_out(data, 10, seed=3)[1].indices == validation.indices
    with pytest.raises(ValueError, match="cannot hold out 50 of 50"):
        hold_out(data, 50)


def test_recipe_names_are_unique_across_families_and_every_profile_has_every_family():
    for table in ("demo", "paper"):
        names = [name for family in runs.FAMILIES for name in family.recipes[table]]
        assert len(names) == len(set(names))
    assert {family.prefix for family in runs.FAMILIES} == {"sr", "recognizer", "cdistnet", "joint"}


def test_every_recipe_builds_its_model_and_bad_recipes_are_refused():
    for recipe in sr.SR_RECIPES["demo"].values():
        model = sr.build(recipe)
        assert model(torch.rand(2, 3, 16, 64)).shape == (2, 3, 32, 128)
    config = TrainConfig(steps=1)
    with pytest.raises(ValueError, match="unknown SR model 'srgan'"):
        sr.SRRecipe("srgan", "demo", "mse", config)
    with pytest.raises(ValueError, match="unknown edsr size 'huge'"):
        sr.SRRecipe("edsr", "huge", "mse", config)
    with pytest.raises(ValueError, match="unknown loss 'ssim'"):
        sr.SRRecipe("edsr", "demo", "ssim", config)
    with pytest.raises(ValueError, match="unknown recognizer size 'huge'"):
        guide.RecognizerRecipe("huge", config)
    with pytest.raises(ValueError, match="unknown CDistNet size 'huge'"):
        cdistnet.CDistNetRecipe("huge", config)


@pytest.fixture
def tiny_session(tiny_recipes):
    return setup("demo", device="cpu", textzoom=tiny_recipes, verbose=False)


def test_trained_recipes_are_cached_and_start_from_their_pretraining(tiny_session):
    first = runs.trained(tiny_session, "stn-edsr")
    assert isinstance(first.model, RectifiedSR) and not first.model.training
    assert first.checkpoint.is_file() and first.key in first.checkpoint.name
    assert first.checkpoint.name.startswith("sr-stn-edsr-")
    assert len(first.result.losses) == 4
    assert first.result.validations[-1]["validation"]["images"] == 12
    assert runs.checkpoint_path(tiny_session, "edsr-natural").is_file()
    again = runs.trained(tiny_session, "stn-edsr")
    assert again.result.resumed_from == 4
    pairs = zip(first.model.state_dict().values(), again.model.state_dict().values(), strict=True)
    for a, b in pairs:
        assert torch.equal(a, b)
    reloaded = runs.load_trained_weights(create_model("stn-edsr", "demo"), first.checkpoint)
    assert not torch.equal(reloaded.sr.tail[-1].weight, first.model.sr.tail[-1].weight)
    # the checkpoint holds float32 training state; the run, the demo's float16 storage of it
    round_to_storage(reloaded, tiny_session.profile.weight_storage)
    assert torch.equal(reloaded.sr.tail[-1].weight, first.model.sr.tail[-1].weight)


def test_a_recipe_trains_to_the_same_weights_whatever_ran_before(tiny_session):
    first = runs.trained(tiny_session, "edsr").model.state_dict()
    runs.checkpoint_path(tiny_session, "edsr").unlink()
    torch.rand(1000)  # another chapter or command consumed random numbers in between
    second = runs.trained(tiny_session, "edsr").model.state_dict()
    for name, weight in first.items():
        assert torch.equal(weight, second[name]), name


def test_dependencies_are_the_runs_whose_keys_a_run_uses(tmp_path, monkeypatch):
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path))
    session = setup("demo", device="cpu", verbose=False)
    assert runs.dependencies(session, "stn-edsr-mse") == ["stn-edsr"]  # mse: no guide
    assert runs.dependencies(session, "stn-edsr-text-focus") == ["guide", "stn-edsr"]
    assert runs.dependencies(session, "finetune-bicubic") == ["pretrain"]
    assert runs.needed_runs(session, ["finetune-stn-edsr-text-focus"]) == [
        "pretrain",
        "guide",
        "edsr-natural",
        "stn-edsr",
        "stn-edsr-text-focus",
        "finetune-stn-edsr-text-focus",
    ]
    assert not (tmp_path / "demo").exists()  # keys only: no data generated


def test_a_changed_recipe_gets_a_new_checkpoint(tiny_session, monkeypatch):
    before = runs.checkpoint_path(tiny_session, "stn-edsr")
    demo = dict(sr.SR_RECIPES["demo"])
    demo["edsr-natural"] = replace(demo["edsr-natural"], natural_pairs=20)
    monkeypatch.setitem(sr.SR_RECIPES, "demo", demo)
    assert runs.checkpoint_path(tiny_session, "stn-edsr") != before
    with pytest.raises(KeyError, match="no recipe 'tbsrn-x' in profile 'demo'"):
        runs.recipe_for(tiny_session, "tbsrn-x")


def test_keys_are_computed_without_reading_or_generating_data(tmp_path, monkeypatch):
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path))
    session = setup("demo", device="cpu", verbose=False)
    for family in runs.FAMILIES:
        for name in family.recipes["demo"]:
            assert runs.checkpoint_path(session, name).name.startswith(f"{family.prefix}-{name}-")
    assert list(tmp_path.iterdir()) == []  # no dataset generated, no folder created


def test_the_guide_depends_on_the_seed_that_holds_its_validation_words_out(tmp_path, monkeypatch):
    # the validation words are held out with the session's seed, so the guide trained under
    # another seed saw other words: its checkpoint, and every run it guides, must differ
    assert hold_out(range(6000), 200, 0)[1].indices != hold_out(range(6000), 200, 1)[1].indices
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path))
    first = setup("demo", device="cpu", seed=0, verbose=False)
    second = setup("demo", device="cpu", seed=1, verbose=False)
    for name in ("guide", "judge", "stn-edsr-text-focus", "finetune-hr"):
        assert runs.checkpoint_path(first, name) != runs.checkpoint_path(second, name), name


def test_a_text_focus_recipe_trains_with_the_guide_and_its_confusion_table(
    tiny_session, monkeypatch
):
    tiny = TrainConfig(steps=2, batch_size=4, learning_rate=1e-3)
    monkeypatch.setitem(
        guide.RECOGNIZER_RECIPES, "demo", {"guide": guide.RecognizerRecipe("demo", tiny)}
    )
    demo = dict(sr.SR_RECIPES["demo"])
    demo["focus"] = sr.SRRecipe("stn-edsr", "demo", "text-focus", tiny, start_from="stn-edsr")
    monkeypatch.setitem(sr.SR_RECIPES, "demo", demo)
    before = runs.checkpoint_path(tiny_session, "focus")
    run = runs.trained(tiny_session, "focus")
    assert len(run.result.losses) == 2 and all(map(math.isfinite, run.result.losses))
    counts = runs.guide_confusions(tiny_session, "guide")
    assert counts.sum() > 0  # every character of the train split, read by the guide
    assert list((tiny_session.cache.root / "tables").glob("confusions-guide-*.pt"))
    loss = runs.loss_for(tiny_session, demo["focus"])
    assert loss.weights.position == 10.0 and loss.weights.content == 0.0005
    assert torch.equal(loss.weight_table, runs.guide_weight_table(tiny_session, "guide"))
    # a retrained guide makes a new checkpoint name for every recipe it guides
    monkeypatch.setitem(
        guide.RECOGNIZER_RECIPES,
        "demo",
        {"guide": guide.RecognizerRecipe("demo", replace(tiny, steps=3))},
    )
    assert runs.checkpoint_path(tiny_session, "focus") != before
    with pytest.raises(ValueError, match="unknown loss 'ocr'"):
        sr.SRRecipe("edsr", "demo", "ocr", tiny)


def test_the_smoke_profile_trains_the_demo_recipes_briefly_in_its_own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path))
    smoke = setup("smoke", verbose=False)
    demo = sr.SR_RECIPES["demo"]["stn-edsr"]
    shortened = runs.recipe_for(smoke, "stn-edsr")
    assert shortened.train.steps == round(demo.train.steps * smoke.profile.budget)
    assert replace(shortened, train=demo.train) == demo
    guide_steps = guide.RECOGNIZER_RECIPES["demo"]["guide"].train.steps
    assert runs.recipe_for(smoke, "guide").train.steps == round(guide_steps * smoke.profile.budget)
    pretrain_steps = cdistnet.CDISTNET_RECIPES["demo"]["pretrain"].train.steps
    assert runs.recipe_for(smoke, "pretrain").train.steps == round(
        pretrain_steps * smoke.profile.budget
    )
    assert smoke.cache.root == tmp_path / "smoke"
    assert runs.checkpoint_path(smoke, "stn-edsr").parent == tmp_path / "smoke" / "checkpoints"


def test_fine_tuning_starts_from_the_cached_pretraining(tiny_cdistnet):
    session = tiny_cdistnet
    pretrained = runs.trained(session, "pretrain")
    assert pretrained.checkpoint.is_file() and not pretrained.model.training
    assert pretrained.checkpoint.name.startswith("cdistnet-pretrain-")
    assert pretrained.result.validations[-1]["validation"]["accuracy"] >= 0
    tuned = runs.trained(session, "finetune-hr")
    assert len(tuned.result.losses) == 2
    again = runs.trained(session, "finetune-hr")
    assert again.result.resumed_from == 2
    assert torch.equal(again.model.tgt_word_prj.weight, tuned.model.tgt_word_prj.weight)


def test_fine_tuning_on_sr_images_depends_on_the_sr_recipe(tiny_cdistnet, monkeypatch):
    session = tiny_cdistnet
    runs.trained(session, "finetune-stn-edsr")
    assert isinstance(runs.image_source(session, "stn-edsr"), torch.nn.Module)
    assert runs.image_source(session, "hr") == "hr"
    assert runs.checkpoint_path(session, "stn-edsr").is_file()
    before = runs.checkpoint_path(session, "finetune-stn-edsr")
    hr_before = runs.checkpoint_path(session, "finetune-hr")
    demo = dict(sr.SR_RECIPES["demo"])
    demo["stn-edsr"] = replace(demo["stn-edsr"], loss="l1")
    monkeypatch.setitem(sr.SR_RECIPES, "demo", demo)
    assert runs.checkpoint_path(session, "finetune-stn-edsr") != before
    assert runs.checkpoint_path(session, "finetune-hr") == hr_before


def test_every_profile_has_pretraining_and_the_four_fine_tunes():
    for profile in ("demo", "paper"):
        names = set(cdistnet.CDISTNET_RECIPES[profile])
        expected = {"pretrain", "finetune-hr", "finetune-bicubic"}
        expected |= {"finetune-stn-edsr-text-focus", "finetune-tbsrn-text-focus"}
        assert names == expected


def test_scene_text_pretraining_reads_the_given_lmdbs_and_names_what_is_missing(
    tiny_cdistnet, tmp_path, monkeypatch
):
    from PIL import Image

    from ocrsr_lib.data.scene_text import write_scene_text_lmdb

    recipe = cdistnet.CDistNetRecipe("demo", TrainConfig(steps=1), data="scene-text")
    with pytest.raises(FileNotFoundError, match="OCRSR_SCENE_TEXT"):
        recognizer_train_and_validation(tiny_cdistnet, recipe.data)
    words = [(Image.new("RGB", (100, 32), "white"), word) for word in ("one", "two", "three")]
    write_scene_text_lmdb(tmp_path / "mj", words)
    monkeypatch.setenv("OCRSR_SCENE_TEXT", str(tmp_path / "mj"))
    session = setup("demo", device="cpu", textzoom=tiny_cdistnet.textzoom, verbose=False)
    train, validation = recognizer_train_and_validation(session, recipe.data)
    assert len(train) == 3 and train[2][2] == "three" and tuple(train[0][1].shape) == (3, 32, 128)
    assert len(validation) > 0  # validation stays on TextZoom words
    plain = replace(recipe, data="text")
    assert cdistnet.key_parts(session, recipe) != cdistnet.key_parts(session, plain)
    with pytest.raises(ValueError, match="images='hr'"):
        replace(recipe, images="bicubic")


def test_create_model_builds_what_the_recipes_name():
    for recipe in sr.SR_RECIPES["paper"].values():
        assert type(sr.build(recipe)) is type(create_model(recipe.model, recipe.size))


def test_a_trained_guide_is_cached_and_validated(tiny_recipes, monkeypatch):
    session = setup("demo", device="cpu", textzoom=tiny_recipes, verbose=False)
    tiny = TrainConfig(steps=3, batch_size=4, learning_rate=1e-3)
    demo = {"guide": guide.RecognizerRecipe("demo", tiny)}
    monkeypatch.setitem(guide.RECOGNIZER_RECIPES, "demo", demo)
    first = runs.trained(session, "guide")
    assert first.checkpoint.is_file() and not first.model.training
    accuracy = first.result.validations[-1]["validation"]["accuracy"]
    assert 0.0 <= accuracy <= 1.0
    again = runs.trained(session, "guide")
    assert again.result.resumed_from == 3
    for a, b in zip(
        first.model.state_dict().values(), again.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="unknown recognizer size 'huge'"):
        guide.RecognizerRecipe("huge", tiny)
