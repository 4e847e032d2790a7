"""The data runs train on: the session's TextZoom train split with a validation part held out
(never a test split), and the identity of that data for run keys."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset

from ocrsr_lib.config import Session
from ocrsr_lib.data import session_splits, textzoom_identity

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
