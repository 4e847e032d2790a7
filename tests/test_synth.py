"""The synthetic TextZoom generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ocrsr_lib.data import TextZoomDataset, load_textzoom, normalize_label
from ocrsr_lib.data.synth import (
    DEGRADATIONS,
    defocus,
    defocus_kernel,
    ensure_synthetic_textzoom,
    font_paths,
    generate_split,
    synthesize_pair,
    vocabulary,
)
from ocrsr_lib.metrics import psnr


def test_pairs_are_deterministic_from_seed_split_and_index():
    first = synthesize_pair(0, "medium", 7)
    again = synthesize_pair(0, "medium", 7)
    assert (first.lr_bytes, first.hr_bytes, first.label) == (
        again.lr_bytes,
        again.hr_bytes,
        again.label,
    )
    assert synthesize_pair(1, "medium", 7).hr_bytes != first.hr_bytes
    assert synthesize_pair(0, "medium", 8).hr_bytes != first.hr_bytes


def test_pairs_have_textzoom_sizes_and_stages():
    pair = synthesize_pair(0, "hard", 1, keep_stages=True)
    assert pair.hr.size == (128, 32) and pair.lr.size == (64, 16)
    assert pair.lr_bytes[:2] == b"\xff\xd8" and pair.hr_bytes[:4] == b"\x89PNG"
    assert list(pair.stages) == [
        "scene",
        "misaligned",
        "defocused",
        "sensor",
        "exposure",
        "noise",
        "jpeg",
    ]
    assert pair.stages["scene"].shape == (64, 256, 3) and pair.stages["jpeg"].shape == (16, 64, 3)
    low, high = DEGRADATIONS["hard"].blur_radius
    assert low <= pair.parameters["blur_radius"] <= high


def bicubic_psnr(difficulty: str, count: int = 60) -> float:
    values = []
    for index in range(1, count + 1):
        pair = synthesize_pair(0, difficulty, index)
        upscaled = np.asarray(pair.lr.resize((128, 32), Image.BICUBIC), np.float32) / 255
        hr = np.asarray(pair.hr, np.float32) / 255
        values.append(
            psnr(torch.from_numpy(upscaled).permute(2, 0, 1), torch.from_numpy(hr).permute(2, 0, 1))
        )
    return float(torch.stack(values).mean())


def test_degradation_grows_from_easy_to_hard():
    easy, medium, hard = (bicubic_psnr(d) for d in ("easy", "medium", "hard"))
    assert easy > medium + 0.3 > hard + 0.6


def test_defocus_kernel_is_a_normalised_disk_and_preserves_flat_images():
    kernel = defocus_kernel(3.0)
    assert kernel.sum() == pytest.approx(1.0)
    assert kernel[kernel.shape[0] // 2, kernel.shape[1] // 2] > kernel[0, 0] == 0
    flat = np.full((20, 30, 3), 77.0)
    assert np.allclose(defocus(flat, 3.0), 77.0)
    step = np.zeros((20, 30, 3))
    step[:, 15:] = 255
    blurred = defocus(step, 3.0)
    assert blurred.shape == step.shape and 0 < blurred[10, 14, 0] < 255


def test_test_splits_hold_words_never_seen_in_training():
    vocab = vocabulary(0)
    assert len(vocab.train) > 10000 and len(vocab.test_only) > 1000
    assert not set(vocab.train) & set(vocab.test_only)
    train_labels = {normalize_label(synthesize_pair(0, "train1", i).label) for i in range(1, 200)}
    test_labels = [normalize_label(synthesize_pair(0, "easy", i).label) for i in range(1, 200)]
    unseen = [w for w in test_labels if w in {normalize_label(t) for t in vocab.test_only}]
    assert len(unseen) > 40
    assert not set(unseen) & train_labels


def test_fonts_ship_with_installed_packages():
    assert len(font_paths()) >= 10


def test_generated_split_reads_back_with_the_textzoom_loader(tmp_path):
    assert generate_split(tmp_path / "easy", "easy", 12, seed=3, workers=2) == 12
    dataset = TextZoomDataset(tmp_path / "easy")
    assert len(dataset) == 12
    lr, hr, label = dataset[11]
    pair = synthesize_pair(3, "easy", 12)
    assert label == pair.label
    assert torch.equal(hr, torch.from_numpy(np.asarray(pair.hr, np.float32) / 255).permute(2, 0, 1))
    assert torch.equal(lr, torch.from_numpy(np.asarray(pair.lr, np.float32) / 255).permute(2, 0, 1))


def test_synthetic_root_has_textzoom_layout_and_is_reused(tmp_path):
    root = ensure_synthetic_textzoom(tmp_path, train_pairs=10, test_pairs=(3, 2, 1), workers=1)
    splits = load_textzoom(root)
    assert len(splits["train"]) == 10
    assert [len(splits[d]) for d in ("easy", "medium", "hard")] == [3, 2, 1]
    stamp = (root / "train1" / "data.mdb").stat().st_mtime_ns
    assert ensure_synthetic_textzoom(tmp_path, 10, (3, 2, 1), workers=1) == root
    assert (root / "train1" / "data.mdb").stat().st_mtime_ns == stamp


def test_worker_processes_write_the_same_records_and_one_pool_serves_every_split(
    tmp_path, monkeypatch
):
    import lmdb

    from ocrsr_lib.data import synth

    pools = []
    make_pool = synth.worker_pool
    monkeypatch.setattr(synth, "worker_pool", lambda n: pools.append(n) or make_pool(n))
    parallel = ensure_synthetic_textzoom(tmp_path / "two", 10, (3, 2, 1), workers=2)
    serial = ensure_synthetic_textzoom(tmp_path / "one", 10, (3, 2, 1), workers=1)
    assert pools == [2, 1]
    for folder in ("train1", "train2", "test/easy", "test/medium", "test/hard"):
        records = []
        for root in (parallel, serial):
            with lmdb.open(str(root / folder), readonly=True, lock=False) as environment:
                records.append(dict(environment.begin().cursor()))
        assert records[0] == records[1], folder
