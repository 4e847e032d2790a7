"""Data: TextZoom LMDB splits (real or synthetic), labels and character sets."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from torch.utils.data import ConcatDataset, Dataset, Subset

from ocrsr_lib.config import SCENE_TEXT_ENV, Session
from ocrsr_lib.data.synth import ensure_synthetic_textzoom, synthetic_textzoom_root
from ocrsr_lib.data.synth_scene_text import ensure_synthetic_scene_text, synthetic_scene_text_root
from ocrsr_lib.data.textzoom import (
    HR_SIZE,
    LR_SIZE,
    TEST_DIFFICULTIES,
    TextZoomDataset,
    TextZoomFormatError,
    TextZoomRecordError,
    TextZoomSample,
    load_textzoom,
    split_labels,
    write_textzoom_lmdb,
)
from ocrsr_lib.labels import (
    CDISTNET_CHARSET,
    CDISTNET_MAX_LABEL_LENGTH,
    GUIDE_CHARSET,
    Charset,
    normalize_label,
)

__all__ = [
    "CDISTNET_CHARSET",
    "CDISTNET_MAX_LABEL_LENGTH",
    "GUIDE_CHARSET",
    "HR_SIZE",
    "LR_SIZE",
    "TEST_DIFFICULTIES",
    "Charset",
    "TextZoomDataset",
    "TextZoomFormatError",
    "TextZoomRecordError",
    "TextZoomSample",
    "ensure_synthetic_textzoom",
    "load_textzoom",
    "normalize_label",
    "session_textzoom_root",
    "session_scene_text",
    "scene_text_identity",
    "synthetic_scene_text_words",
    "textzoom_identity",
    "session_splits",
    "note_skipped",
    "skipped_lines",
    "scoring_splits",
    "first_items",
    "decoded_in_memory",
    "split_labels",
    "write_textzoom_lmdb",
]


def session_textzoom_root(session: Session) -> Path:
    """The session's TextZoom root: the real one when given, else the cached synthetic one
    (generated on first use)."""
    if session.textzoom is not None:
        return session.textzoom
    synthetic = session.profile.synthetic
    return ensure_synthetic_textzoom(
        session.cache.root, synthetic.train_pairs, synthetic.test_pairs, synthetic.seed
    )


def textzoom_identity(session: Session) -> str:
    """What identifies the session's text data, without reading or generating it: the real
    TextZoom's folder, or the synthetic one's name (a hash of its generator settings, the same
    in every cache folder and on every machine, so that shipped weights match)."""
    if session.textzoom is not None:
        return str(Path(session.textzoom).resolve())
    synthetic = session.profile.synthetic
    root = synthetic_textzoom_root(
        session.cache.root, synthetic.train_pairs, synthetic.test_pairs, synthetic.seed
    )
    return root.name


def synthetic_scene_text_words(session: Session) -> int:
    """How many synthetic scene-text words stand in for MJSynth + SynthText: only when the
    session reads synthetic TextZoom and names no scene-text LMDBs; else 0."""
    if session.scene_text or session.textzoom is not None:
        return 0
    return session.profile.synthetic.scene_text_words


def session_scene_text(session: Session) -> tuple[Path, ...]:
    """The scene-text LMDBs the recognizers pretrain on: the session's own, else the profile's
    synthetic scene text (generated on first use); an error says how to name real ones."""
    words = synthetic_scene_text_words(session)
    if words:
        synthetic = session.profile.synthetic
        return (ensure_synthetic_scene_text(session.cache.root, words, synthetic.seed),)
    if not session.scene_text:
        raise FileNotFoundError(
            "this recipe pretrains on MJSynth + SynthText: give their LMDB folders with "
            f"{SCENE_TEXT_ENV}=/data/MJ{os.pathsep}/data/ST (or setup(scene_text=[...]))"
        )
    return session.scene_text


def scene_text_identity(session: Session) -> list[str]:
    """What identifies the scene-text LMDBs without reading or generating them: the real
    folders, or the synthetic set's name (a hash of its settings, the same in every cache)."""
    words = synthetic_scene_text_words(session)
    if words:
        synthetic = session.profile.synthetic
        return [synthetic_scene_text_root(session.cache.root, words, synthetic.seed).name]
    return [str(root.resolve()) for root in session.scene_text]


def session_splits(session: Session, **options) -> dict[str, Dataset]:
    """`train`, `easy`, `medium` and `hard` for the session (generated on first use); with the
    session's `skip_corrupt`, unreadable records are left out and noted in `session.skipped`."""
    options.setdefault("skip_corrupt", session.skip_corrupt)
    splits = load_textzoom(session_textzoom_root(session), **options)
    note_skipped(session, splits.values())
    return splits


def note_skipped(session: Session, datasets: Iterable[Dataset]) -> None:
    """Record in `session.skipped` the records that these splits (or their parts) left out."""
    for dataset in datasets:
        parts = dataset.datasets if isinstance(dataset, ConcatDataset) else [dataset]
        for part in parts:
            if getattr(part, "skipped", None):
                session.skipped[str(part.path)] = list(part.skipped)


def skipped_lines(session: Session) -> list[str]:
    """One line per unreadable record noted so far (split folder, record index, reason)."""
    return [
        f"{folder} record {index}: {reason}"
        for folder, records in session.skipped.items()
        for index, reason in records
    ]


def first_items(dataset: Dataset, count: int | None) -> Dataset:
    """The first `count` items of a dataset (all of it when None)."""
    return dataset if count is None else Subset(dataset, range(min(count, len(dataset))))


def decoded_in_memory(dataset: Dataset) -> list:
    """Every item of `dataset`, decoded once and kept in memory: for test splits that a chapter
    reads again and again (decoding a TextZoom record costs about a millisecond)."""
    return [dataset[index] for index in range(len(dataset))]


def scoring_splits(session: Session) -> dict[str, Dataset]:
    """`easy`, `medium` and `hard` as pipelines are scored: every word, or the first
    `profile.test_words` of each split (the smoke profile reads fewer, to run fast)."""
    splits, count = session_splits(session), session.profile.test_words
    return {name: first_items(splits[name], count) for name in TEST_DIFFICULTIES}
