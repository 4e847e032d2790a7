"""TextZoom LMDB reading and writing."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import encoded, random_image, raw_records, write_raw_lmdb
from PIL import Image
from torch.utils.data import DataLoader

from ocrsr_lib.data import (
    TextZoomDataset,
    TextZoomFormatError,
    TextZoomRecordError,
    TextZoomSample,
    decoded_in_memory,
    load_textzoom,
    split_labels,
    write_textzoom_lmdb,
)


def expected_tensor(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """What TextZoom's loader gives: RGB, bicubic resize to (width, height), /255."""
    rgb = image.convert("RGB")
    if rgb.size != size:
        rgb = rgb.resize(size, Image.BICUBIC)
    return torch.from_numpy(np.asarray(rgb, np.float32) / 255).permute(2, 0, 1)


def test_reads_textzoom_records_like_textzoom(textzoom_like):
    path, pairs = textzoom_like
    dataset = TextZoomDataset(path)
    assert len(dataset) == 4
    for i, (_lr_image, _hr_image, label) in enumerate(pairs):
        lr, hr, stored_label = dataset[i]
        assert lr.shape == (3, 16, 64) and hr.shape == (3, 32, 128)
        assert lr.dtype == torch.float32 and 0 <= lr.min() and lr.max() <= 1
        decoded_lr = Image.open(io.BytesIO(dataset.raw_record(i + 1)["image_lr"]))
        decoded_hr = Image.open(io.BytesIO(dataset.raw_record(i + 1)["image_hr"]))
        assert torch.equal(lr, expected_tensor(decoded_lr, (64, 16)))
        assert torch.equal(hr, expected_tensor(decoded_hr, (128, 32)))
        assert stored_label == label


def test_a_split_decoded_in_memory_batches_exactly_as_read_from_its_lmdb(textzoom_like):
    path, _ = textzoom_like
    dataset = TextZoomDataset(path)
    kept = decoded_in_memory(dataset)
    assert len(kept) == len(dataset)
    batches = zip(DataLoader(kept, batch_size=3), DataLoader(dataset, batch_size=3), strict=True)
    for (lr, hr, labels), (lr_read, hr_read, labels_read) in batches:
        assert torch.equal(lr, lr_read) and torch.equal(hr, hr_read) and labels == labels_read


def test_first_item_is_key_one_and_raw_label_is_kept(textzoom_like):
    path, _ = textzoom_like
    dataset = TextZoomDataset(path)
    assert dataset[0][2] == "Hello"
    assert dataset[-1][2] == "çafé"
    assert dataset.raw_record(1)["label"] == b"Hello"


def test_png_records_are_read_losslessly(textzoom_like):
    path, pairs = textzoom_like
    lr, hr, _ = TextZoomDataset(path)[0]
    assert torch.equal(hr, expected_tensor(pairs[0][1], (128, 32)))
    assert torch.equal(lr, expected_tensor(pairs[0][0], (64, 16)))


def test_index_past_the_end_raises(textzoom_like):
    dataset = TextZoomDataset(textzoom_like[0])
    with pytest.raises(IndexError, match="out of range"):
        dataset[4]
    with pytest.raises(IndexError):
        dataset[-5]


def test_mask_channel_marks_darker_than_mean(tmp_path):
    hr = Image.fromarray(np.tile(np.array([[10, 200]], np.uint8), (32, 64)), mode="L")
    lr = hr.resize((64, 16), Image.NEAREST)
    path = write_textzoom_lmdb(tmp_path / "split", [(lr, hr, "x")]) and tmp_path / "split"
    lr_tensor, hr_tensor, _ = TextZoomDataset(path, mask=True)[0]
    assert lr_tensor.shape == (4, 16, 64) and hr_tensor.shape == (4, 32, 128)
    dark = hr_tensor[0] < 0.5
    assert torch.equal(hr_tensor[3], dark.float())


def test_round_trip_keeps_pixels_and_labels(tmp_path):
    rng = np.random.default_rng(1)
    samples = [
        TextZoomSample(random_image(rng, (64, 16)), random_image(rng, (128, 32)), f"w{i}")
        for i in range(5)
    ]
    assert write_textzoom_lmdb(tmp_path / "split", samples, commit_every=2) == 5
    dataset = TextZoomDataset(tmp_path / "split")
    assert len(dataset) == 5
    for sample, (lr, hr, label) in zip(samples, dataset, strict=True):
        assert label == sample.label
        assert torch.equal(hr, expected_tensor(sample.hr, (128, 32)))
        assert torch.equal(lr, expected_tensor(sample.lr, (64, 16)))
    assert dataset.raw_record(1)["label"] == b"w0"
    assert dataset.raw_record(6)["label"] is None


def test_writer_grows_the_map_for_large_records(tmp_path):
    rng = np.random.default_rng(2)
    big = random_image(rng, (4096, 4096))
    png = encoded(big)
    assert len(png) > 40 << 20  # larger than the initial 64 MiB map after three records
    count = write_textzoom_lmdb(tmp_path / "split", [(png, png, "big")] * 2)
    assert count == 2
    assert TextZoomDataset(tmp_path / "split")[1][1].shape == (3, 32, 128)


def test_interrupted_write_leaves_previous_split_intact(tmp_path):
    rng = np.random.default_rng(3)
    good = [(random_image(rng, (64, 16)), random_image(rng, (128, 32)), "old")]
    write_textzoom_lmdb(tmp_path / "split", good)

    def crashing_samples():
        yield (random_image(rng, (64, 16)), random_image(rng, (128, 32)), "new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_textzoom_lmdb(tmp_path / "split", crashing_samples(), overwrite=True)
    assert TextZoomDataset(tmp_path / "split")[0][2] == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split"]


def test_interrupted_first_write_leaves_nothing(tmp_path):
    def crashing_samples():
        raise RuntimeError("renderer died")
        yield

    with pytest.raises(RuntimeError):
        write_textzoom_lmdb(tmp_path / "split", crashing_samples())
    assert list(tmp_path.iterdir()) == []


def test_missing_num_samples_is_reported(tmp_path):
    path = write_raw_lmdb(tmp_path / "split", {b"label-000000001": b"x"})
    with pytest.raises(TextZoomFormatError, match="num-samples"):
        TextZoomDataset(path)


def test_non_integer_num_samples_is_reported(tmp_path):
    path = write_raw_lmdb(tmp_path / "split", {b"num-samples": b"many"})
    with pytest.raises(TextZoomFormatError, match="not an integer"):
        TextZoomDataset(path)


def test_missing_folder_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TextZoom split"):
        TextZoomDataset(tmp_path / "nowhere")


def corrupt_records() -> dict[bytes, bytes]:
    """Five records; record 3's HR image is truncated and record 5 has no LR image."""
    records = raw_records(5, seed=4, label="word")
    del records[b"image_lr-000000005"]
    records[b"image_hr-000000003"] = records[b"image_hr-000000003"][:40]
    return records


def corrupt_split(tmp_path: Path) -> Path:
    return write_raw_lmdb(tmp_path / "split", corrupt_records())


def test_corrupt_record_error_names_key_and_path(tmp_path):
    path = corrupt_split(tmp_path)
    # a missing key is found when the split is opened, not when the record is first read
    with pytest.raises(TextZoomFormatError, match="image_lr-000000005 is missing") as error:
        TextZoomDataset(path)
    assert str(path) in str(error.value)
    path = write_raw_lmdb(tmp_path / "four", {**corrupt_records(), b"num-samples": b"4"})
    dataset = TextZoomDataset(path)
    assert dataset[1][2] == "word2"
    with pytest.raises(TextZoomRecordError, match="image_hr-000000003") as error:
        dataset[2]
    assert str(path) in str(error.value)


def test_bad_utf8_label_is_reported(tmp_path):
    rng = np.random.default_rng(5)
    records = {
        b"num-samples": b"1",
        b"label-000000001": b"\xff\xfe",
        b"image_hr-000000001": encoded(random_image(rng, (128, 32))),
        b"image_lr-000000001": encoded(random_image(rng, (64, 16))),
    }
    dataset = TextZoomDataset(write_raw_lmdb(tmp_path / "split", records))
    with pytest.raises(TextZoomRecordError, match="label-000000001 is not UTF-8"):
        dataset[0]


def test_skip_mode_counts_and_reports_what_it_skipped(tmp_path):
    path = corrupt_split(tmp_path)
    with pytest.warns(UserWarning, match="skipped 2 of 5"):
        dataset = TextZoomDataset(path, skip_corrupt=True)
    assert len(dataset) == 3
    assert [label for _, _, label in dataset] == ["word1", "word2", "word4"]
    assert [index for index, _ in dataset.skipped] == [3, 5]
    assert "image_hr-000000003" in dataset.skipped[0][1]


def test_dataloader_with_workers_reads_every_record(tmp_path):
    rng = np.random.default_rng(6)
    labels = [f"w{i:02d}" for i in range(24)]
    samples = [(random_image(rng, (64, 16)), random_image(rng, (128, 32)), w) for w in labels]
    write_textzoom_lmdb(tmp_path / "split", samples)
    dataset = TextZoomDataset(tmp_path / "split")
    dataset[0]  # an environment opened in the parent must not leak into the workers
    loader = DataLoader(dataset, batch_size=5, num_workers=2, shuffle=False)
    seen = []
    for lr, hr, batch_labels in loader:
        assert lr.shape[1:] == (3, 16, 64) and hr.shape[1:] == (3, 32, 128)
        seen.extend(batch_labels)
    assert seen == labels


def test_load_textzoom_concatenates_train_and_names_missing_splits(tmp_path):
    rng = np.random.default_rng(7)
    sizes = {"train1": 3, "train2": 2, "test/easy": 1, "test/medium": 1, "test/hard": 1}
    for split, count in sizes.items():
        samples = [(random_image(rng, (64, 16)), random_image(rng, (128, 32)), split)] * count
        write_textzoom_lmdb(tmp_path / split, samples)
    splits = load_textzoom(tmp_path)
    assert len(splits["train"]) == 5
    assert splits["train"][4][2] == "train2"
    assert [len(splits[d]) for d in ("easy", "medium", "hard")] == [1, 1, 1]
    (tmp_path / "test/hard/data.mdb").unlink()
    with pytest.raises(FileNotFoundError, match="test/hard"):
        load_textzoom(tmp_path)


def test_load_textzoom_reads_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("OCRSR_TEXTZOOM", raising=False)
    with pytest.raises(FileNotFoundError, match="OCRSR_TEXTZOOM"):
        load_textzoom()
    monkeypatch.setenv("OCRSR_TEXTZOOM", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="missing splits"):
        load_textzoom()


def test_one_split_opened_twice_and_rewritten_in_one_process(tmp_path):
    rng = np.random.default_rng(8)
    write_textzoom_lmdb(
        tmp_path / "split", [(random_image(rng, (64, 16)), random_image(rng, (128, 32)), "a")]
    )
    first, second = TextZoomDataset(tmp_path / "split"), TextZoomDataset(tmp_path / "split")
    assert first[0][2] == second[0][2] == "a"
    write_textzoom_lmdb(
        tmp_path / "split",
        [(random_image(rng, (64, 16)), random_image(rng, (128, 32)), "b")],
        overwrite=True,
    )
    assert TextZoomDataset(tmp_path / "split")[0][2] == "b"


def test_keys_lists_the_stored_keys(textzoom_like):
    keys = TextZoomDataset(textzoom_like[0]).keys()
    assert len(keys) == 13
    assert keys[0] == "image_hr-000000001" and keys[-1] == "num-samples"


def test_labels_reads_labels_only(textzoom_like):
    assert TextZoomDataset(textzoom_like[0]).labels() == ["Hello", "WORLD!", "a-b", "çafé"]


def test_split_labels_handles_concatenated_train(tmp_path):
    rng = np.random.default_rng(9)
    for split, words in {"a": ["x", "y"], "b": ["z"]}.items():
        samples = [(random_image(rng, (64, 16)), random_image(rng, (128, 32)), w) for w in words]
        write_textzoom_lmdb(tmp_path / split, samples)
    both = torch.utils.data.ConcatDataset(
        [TextZoomDataset(tmp_path / "a"), TextZoomDataset(tmp_path / "b")]
    )
    assert split_labels(both) == ["x", "y", "z"]
    with pytest.raises(TypeError):
        split_labels([1, 2])
