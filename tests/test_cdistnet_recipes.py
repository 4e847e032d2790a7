"""Cached CDistNet recipes: pretraining, fine-tuning from it on HR or an SR recipe's images."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ocrsr_lib import cdistnet_recipes, recipes
from ocrsr_lib.config import setup
from ocrsr_lib.data import normalize_label, scoring_splits, session_splits, split_labels
from ocrsr_lib.train import TrainConfig


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


def test_readings_are_cached_per_model_images_and_beam_and_scored_per_split(tiny_cdistnet):
    session = tiny_cdistnet
    readings = cdistnet_recipes.cdistnet_readings(session, "finetune-stn-edsr", "stn-edsr", 2)
    splits = session_splits(session)
    assert {split: len(words) for split, words in readings.items()} == {
        name: len(splits[name]) for name in ("easy", "medium", "hard")
    }
    path = cdistnet_recipes.readings_path(session, "finetune-stn-edsr", "stn-edsr", 2)
    assert path.is_file() and "stn-edsr" in path.name and "beam2" in path.name
    torch.save({"readings": {"easy": ["x"]}}, path)  # the cache is read, not recomputed
    assert cdistnet_recipes.cdistnet_readings(session, "finetune-stn-edsr", "stn-edsr", 2) == {
        "easy": ["x"]
    }
    assert cdistnet_recipes.readings_path(session, "finetune-hr", "hr", 2) != path


def test_pipeline_accuracy_scores_the_cached_readings(tiny_cdistnet, monkeypatch):
    session = tiny_cdistnet
    splits = session_splits(session)
    labels = {name: split_labels(splits[name]) for name in ("easy", "medium", "hard")}
    readings = {name: [normalize_label(label) for label in words] for name, words in labels.items()}
    readings["hard"][0] = "wrong"
    monkeypatch.setattr(cdistnet_recipes, "cdistnet_readings", lambda *args: readings)
    row = cdistnet_recipes.pipeline_accuracy(session, "hr", "finetune-hr")
    assert row["easy"] == row["medium"] == 1.0
    assert row["hard"] == 1 - 1 / len(labels["hard"])
    assert row["average"] == pytest.approx(1 - 1 / sum(map(len, labels.values())))


def test_table_1_reads_each_pipeline_once_with_its_own_cdistnet(tiny_cdistnet, monkeypatch):
    calls = []

    def accuracy(session, images, name):
        calls.append((images, name))
        return {"average": len(calls) / 10}

    monkeypatch.setattr(cdistnet_recipes, "pipeline_accuracy", accuracy)
    table = cdistnet_recipes.table_1(tiny_cdistnet)
    assert list(table) == list(cdistnet_recipes.TABLE_1_PIPELINES)
    assert calls == list(cdistnet_recipes.TABLE_1_PIPELINES.values())
    assert table["bicubic + CDistNet (fine-tuned)"] == {"average": 0.5}


def test_table_1_pipelines_name_existing_recipes():
    for images, name in cdistnet_recipes.TABLE_1_PIPELINES.values():
        assert name in cdistnet_recipes.CDISTNET_RECIPES["demo"]
        assert images in ("bicubic", "hr") or images in recipes.SR_RECIPES["demo"]


def test_scene_text_pretraining_reads_the_given_lmdbs_and_names_what_is_missing(
    tiny_cdistnet, tmp_path, monkeypatch
):
    from PIL import Image

    from ocrsr_lib.data.scene_text import write_scene_text_lmdb

    recipe = cdistnet_recipes.CDistNetRecipe("demo", TrainConfig(steps=1), data="scene-text")
    with pytest.raises(FileNotFoundError, match="OCRSR_SCENE_TEXT"):
        cdistnet_recipes.training_data(tiny_cdistnet, recipe)
    words = [(Image.new("RGB", (100, 32), "white"), word) for word in ("one", "two", "three")]
    write_scene_text_lmdb(tmp_path / "mj", words)
    monkeypatch.setenv("OCRSR_SCENE_TEXT", str(tmp_path / "mj"))
    session = setup("demo", device="cpu", textzoom=tiny_cdistnet.textzoom, verbose=False)
    train, validation = cdistnet_recipes.training_data(session, recipe)
    assert len(train) == 3 and train[2][2] == "three" and tuple(train[0][1].shape) == (3, 32, 128)
    assert len(validation) > 0  # validation stays on TextZoom words
    plain = replace(recipe, data="text")
    assert cdistnet_recipes.training_data_fingerprint(
        session, recipe
    ) != cdistnet_recipes.training_data_fingerprint(session, plain)
    with pytest.raises(ValueError, match="images='hr'"):
        replace(recipe, images="bicubic")


def test_a_profile_with_fewer_test_words_scores_only_those(tiny_cdistnet):
    session = replace(tiny_cdistnet, profile=replace(tiny_cdistnet.profile, test_words=2))
    test = scoring_splits(session)
    assert [len(split) for split in test.values()] == [2, 2, 2]
    assert split_labels(test["easy"]) == split_labels(session_splits(session)["easy"])[:2]
    readings = cdistnet_recipes.cdistnet_readings(session, "finetune-hr", "hr", 1)
    assert [len(words) for words in readings.values()] == [2, 2, 2]
    full = cdistnet_recipes.readings_path(tiny_cdistnet, "finetune-hr", "hr", 1)
    assert cdistnet_recipes.readings_path(session, "finetune-hr", "hr", 1) != full
