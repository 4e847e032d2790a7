"""Synthetic scene text: the demo's stand-in for MJSynth + SynthText.

The paper's CDistNet learns to read on millions of synthetic word images before it ever sees
TextZoom. The demo's recognizers do the same at a laptop's scale: sharp 32x128 word crops
rendered exactly like synthetic TextZoom's HR images (same fonts, colours, backgrounds), but
many more of them, with labels drawn from the training vocabulary only, so a test-only word is
never seen. Written as a scene-text LMDB (`ocrsr_lib.data.scene_text`), the format MJSynth and
SynthText come in.
"""

from __future__ import annotations

import hashlib
import io
import json
from functools import partial
from pathlib import Path

import numpy as np

from ocrsr_lib.data.scene_text import write_scene_text_lmdb
from ocrsr_lib.data.synth import (
    GENERATOR_VERSION,
    default_workers,
    render_scene,
    sample_text,
    scene_to_hr,
    vocabulary,
    worker_pool,
)
from ocrsr_lib.progress import progress_bar

SCENE_TEXT_CODE = 6  # the random stream of scene-text words (TextZoom's splits use 1 to 5)


def _word_random(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng((seed, SCENE_TEXT_CODE, index))


def scene_text_word(seed: int, index: int) -> tuple[bytes, str]:
    """Word `index` (PNG bytes of its 32x128 crop, label), fully determined by (seed, index)."""
    rng = _word_random(seed, index)
    label = sample_text(rng, vocabulary(seed), test=False)
    buffer = io.BytesIO()
    scene_to_hr(render_scene(rng, label)).save(buffer, format="PNG")
    return buffer.getvalue(), label


def scene_text_labels(seed: int, words: int) -> list[str]:
    """The labels of words 1..`words`, without rendering them (each label is its word's first
    random draw)."""
    vocab = vocabulary(seed)
    return [sample_text(_word_random(seed, i), vocab, test=False) for i in range(1, words + 1)]


def synthetic_scene_text_root(cache: Path, words: int, seed: int = 0) -> Path:
    """Where the synthetic scene text with these settings lives; pure (nothing is generated).
    Its name hashes the settings, so it is the same in every cache folder."""
    settings = {"version": GENERATOR_VERSION, "words": words, "seed": seed}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return Path(cache) / "datasets" / f"synthetic-scene-text-{digest}"


def ensure_synthetic_scene_text(
    cache: Path, words: int, seed: int = 0, workers: int | None = None
) -> Path:
    """The synthetic scene-text LMDB in the cache, generated (atomically) on first use."""
    if words < 1:
        raise ValueError(f"a synthetic scene-text set needs at least one word, not {words}")
    root = synthetic_scene_text_root(cache, words, seed)
    if (root / "data.mdb").is_file():
        return root
    make = partial(scene_text_word, seed)
    with worker_pool(default_workers(workers)) as pool:
        indices = range(1, words + 1)
        samples = pool.imap(make, indices, chunksize=64) if pool else map(make, indices)
        progress = progress_bar(samples, total=words, desc="synthetic scene text", leave=False)
        write_scene_text_lmdb(root, progress)
    return root
