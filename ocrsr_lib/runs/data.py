"""The data runs train on: the session's TextZoom train split with a validation part held out
(never a test split), or for recognizers the session's scene text with the same validation
words; and the identity of that data for run keys."""

from __future__ import annotations

import torch
from torch.utils.data import ConcatDataset, Dataset, Subset

from ocrsr_lib.config import Session
from ocrsr_lib.data import (
    note_skipped,
    scene_text_identity,
    session_scene_text,
    session_splits,
    synthetic_scene_text_words,
    textzoom_identity,
)
from ocrsr_lib.data.scene_text import SceneTextDataset

VALIDATION_PAIRS = 200  # held out of the training split (at most a fifth), never from test


def hold_out(dataset: Dataset, count: int, seed: int = 0) -> tuple[Subset, Subset]:
    """Split `dataset` into (training, validation) with `count` random samples held out."""
    if not 0 < count < len(dataset):
        raise ValueError(f"cannot hold out {count} of {len(dataset)} samples")
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
    return Subset(dataset, sorted(order[count:])), Subset(dataset, sorted(order[:count]))


def text_train_and_validation(session: Session) -> tuple[Subset, Subset]:
    """The session's train split minus a held-out validation part (at most a fifth); which
    words are held out depends on the session's seed."""
    full = session_splits(session)["train"]
    return hold_out(full, min(VALIDATION_PAIRS, len(full) // 5), session.seed)


def text_fingerprint(session: Session) -> str:
    """What identifies the text training data and its held-out part: the TextZoom folder (its
    name hashes synthetic data's settings), the seed that picks the validation words, and
    whether unreadable records are left out (which can change the data)."""
    skipping = ":skip-corrupt" if session.skip_corrupt else ""
    return f"text:{textzoom_identity(session)}:{session.seed}{skipping}"


RECOGNIZER_DATA = ("text", "scene-text")  # what a recognizer recipe's `data` field may name


def recognizer_train_and_validation(session: Session, data: str) -> tuple[Dataset, Subset]:
    """(training words, validation words) for a recognizer: the TextZoom train split less its
    held-out part ("text"), or the session's scene text ("scene-text"); the validation words are
    the same TextZoom words either way."""
    if data not in RECOGNIZER_DATA:
        raise ValueError(f"unknown recognizer data {data!r}; choose one of {RECOGNIZER_DATA}")
    train, validation = text_train_and_validation(session)
    if data == "text":
        return train, validation
    parts = [SceneTextDataset(root, session.skip_corrupt) for root in session_scene_text(session)]
    note_skipped(session, parts)
    return ConcatDataset(parts), validation


def recognizer_training_words(session: Session, data: str) -> int:
    """How many words a recognizer recipe reading `data` trains on, without generating a
    synthetic scene text that is not there yet (its size is the profile's)."""
    if data == "scene-text" and (synthetic := synthetic_scene_text_words(session)):
        return synthetic
    return len(recognizer_train_and_validation(session, data)[0])


def recognizer_fingerprint(session: Session, data: str) -> str:
    """The identity of a recognizer's training words: the text fingerprint (its validation
    words), plus the scene text's for "scene-text"."""
    extra = scene_text_identity(session) if data == "scene-text" else []
    return ":".join([text_fingerprint(session), *extra])
