"""Profiles, cache folder, device selection and seeding."""

from dataclasses import replace

import pytest
import torch

from ocrsr_lib import config


def test_cache_folder_follows_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path / "c"))
    assert config.cache_dir() == (tmp_path / "c").resolve()
    monkeypatch.delenv("OCRSR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert config.cache_dir() == tmp_path.resolve() / "ocrsr"


def test_profiles_default_to_demo_and_reject_unknown_names(monkeypatch):
    monkeypatch.delenv("OCRSR_PROFILE", raising=False)
    assert config.get_profile().name == "demo"
    monkeypatch.setenv("OCRSR_PROFILE", "paper")
    assert config.get_profile().name == "paper"
    assert config.get_profile("demo").name == "demo"
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        config.get_profile("huge")


def test_paper_profile_has_textzoom_split_sizes():
    synthetic = config.get_profile("paper").synthetic
    assert synthetic.train_pairs == 17367 and sum(synthetic.test_pairs) == 4373


def test_device_selection(monkeypatch):
    monkeypatch.delenv("OCRSR_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert config.select_device().type == expected
    assert config.select_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            config.select_device("cuda")


def test_setup_seeds_prints_and_names_the_cache_without_writing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("OCRSR_TEXTZOOM", raising=False)
    session = config.setup("demo", device="cpu", seed=3)
    first = torch.rand(3)
    config.setup("demo", device="cpu", seed=3, verbose=False)
    assert torch.equal(first, torch.rand(3))
    printed = capsys.readouterr().out
    assert "profile : demo" in printed and str(tmp_path / "cache") in printed
    assert session.cache.root == (tmp_path / "cache" / "demo").resolve()
    assert session.cache.file("tables", "x", {"a": 1}).parent == session.cache.root / "tables"
    assert not (tmp_path / "cache").exists()  # nothing is written until something is cached
    assert session.textzoom is None


def test_paper_profile_takes_textzoom_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path))
    monkeypatch.setenv("OCRSR_TEXTZOOM", str(tmp_path / "tz"))
    assert config.setup("paper", device="cpu", verbose=False).textzoom == tmp_path / "tz"
    assert config.setup("demo", device="cpu", verbose=False).textzoom is None


def test_smoke_profile_runs_the_demo_recipes_on_the_demo_data_at_a_hundredth():
    smoke, demo = config.get_profile("smoke"), config.get_profile("demo")
    # the same TextZoom; fewer scene-text words, enough for a hundredth of the steps
    assert replace(smoke.synthetic, scene_text_words=0) == replace(
        demo.synthetic, scene_text_words=0
    )
    assert 0 < smoke.synthetic.scene_text_words < demo.synthetic.scene_text_words
    assert (smoke.recipe_table, demo.recipe_table, config.get_profile("paper").recipe_table) == (
        "demo",
        "demo",
        "paper",
    )
    assert smoke.budget == 0.01 and demo.budget == 1.0
