"""Synthetic scene text: the demo's MJSynth + SynthText, and how recognizer runs find it."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from PIL import Image

from ocrsr_lib.config import PROFILES, SyntheticDataConfig, setup
from ocrsr_lib.data import scene_text_identity, session_scene_text
from ocrsr_lib.data.scene_text import SceneTextDataset
from ocrsr_lib.data.synth import vocabulary
from ocrsr_lib.data.synth_scene_text import (
    ensure_synthetic_scene_text,
    scene_text_labels,
    scene_text_word,
    synthetic_scene_text_root,
)
from ocrsr_lib.runs import guide
from ocrsr_lib.runs.data import (
    recognizer_fingerprint,
    recognizer_train_and_validation,
    recognizer_training_words,
)
from ocrsr_lib.train import TrainConfig


def test_words_are_reproducible_sharp_crops_of_training_vocabulary_only():
    test_only = {word.lower() for word in vocabulary(0).test_only}
    first, label = scene_text_word(0, 1)
    assert scene_text_word(0, 1) == (first, label)
    assert Image.open(io.BytesIO(first)).size == (128, 32)
    labels = scene_text_labels(0, 300)
    assert labels[:5] == [scene_text_word(0, index)[1] for index in range(1, 6)]
    assert len(set(labels)) > 200  # many different words, not one repeated
    stripped = {label.lower().strip("0123456789!.,:&?") for label in labels}
    assert not stripped & test_only  # a test-only word is never seen


def test_generated_once_named_by_its_settings_and_read_as_scene_text(tmp_path):
    root = ensure_synthetic_scene_text(tmp_path / "a", 12, seed=0, workers=1)
    assert root == synthetic_scene_text_root(tmp_path / "a", 12, 0)
    assert root.name == synthetic_scene_text_root(tmp_path / "b", 12, 0).name
    assert root.name != synthetic_scene_text_root(tmp_path / "a", 13, 0).name
    dataset = SceneTextDataset(root)
    lr, hr, label = dataset[3]
    assert len(dataset) == 12 and label == scene_text_word(0, 4)[1]
    assert (tuple(lr.shape), tuple(hr.shape)) == ((3, 16, 64), (3, 32, 128))
    written = (root / "data.mdb").stat().st_mtime_ns
    assert ensure_synthetic_scene_text(tmp_path / "a", 12, seed=0, workers=1) == root
    assert (root / "data.mdb").stat().st_mtime_ns == written  # not generated again
    with pytest.raises(ValueError, match="at least one word"):
        ensure_synthetic_scene_text(tmp_path / "a", 0)


@pytest.fixture
def small_synthetic(monkeypatch: pytest.MonkeyPatch) -> None:
    """The smoke profile with a 60-pair synthetic TextZoom and 20 scene-text words."""
    small = SyntheticDataConfig(train_pairs=60, test_pairs=(4, 4, 4), scene_text_words=20)
    monkeypatch.setitem(PROFILES, "smoke", replace(PROFILES["smoke"], synthetic=small))


def test_a_synthetic_session_pretrains_recognizers_on_synthetic_scene_text(
    tmp_path, monkeypatch, small_synthetic
):
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("OCRSR_SCENE_TEXT", raising=False)
    session = setup("smoke", device="cpu", verbose=False)
    words = session.profile.synthetic.scene_text_words
    identity = scene_text_identity(session)  # pure: nothing generated yet
    assert recognizer_training_words(session, "scene-text") == words
    assert not (session.cache.root / "datasets" / identity[0]).exists()
    (root,) = session_scene_text(session)
    assert root.name == identity[0] and len(SceneTextDataset(root)) == words
    train, validation = recognizer_train_and_validation(session, "scene-text")
    text_train, text_validation = recognizer_train_and_validation(session, "text")
    assert len(train) == words
    assert validation.indices == text_validation.indices  # the same TextZoom words judge both
    assert recognizer_training_words(session, "text") == len(text_train)
    assert recognizer_fingerprint(session, "scene-text") != recognizer_fingerprint(session, "text")
    with pytest.raises(ValueError, match="unknown recognizer data 'mj'"):
        recognizer_train_and_validation(session, "mj")


def test_named_scene_text_replaces_the_synthetic_one(tmp_path, monkeypatch, small_synthetic):
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OCRSR_SCENE_TEXT", str(tmp_path / "mj"))
    session = setup("smoke", device="cpu", verbose=False)
    assert session_scene_text(session) == (tmp_path / "mj",)
    assert scene_text_identity(session) == [str((tmp_path / "mj").resolve())]


def test_demo_recognizers_read_scene_text_and_unknown_data_is_refused():
    for name, recipe in guide.RECOGNIZER_RECIPES["demo"].items():
        assert recipe.data == "scene-text", name
    with pytest.raises(ValueError, match="unknown recognizer data 'words'"):
        guide.RecognizerRecipe("demo", TrainConfig(steps=1), data="words")
