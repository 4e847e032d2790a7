"""Scene-text LMDBs (num-samples, image-%09d, label-%09d): reading, writing, bad records."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import encoded, random_image, write_raw_lmdb
from PIL import Image

from ocrsr_lib.data.scene_text import SceneTextDataset, write_scene_text_lmdb
from ocrsr_lib.data.textzoom import TextZoomFormatError, TextZoomRecordError


def test_reads_an_lmdb_written_with_plain_lmdb_as_the_official_keys_say(tmp_path):
    rng = np.random.default_rng(0)
    images = [random_image(rng, (100, 30)), random_image(rng, (128, 32), "L")]
    records = {b"num-samples": b"2"}
    for i, (image, label) in enumerate(zip(images, ["Hello", "w0rd!"], strict=True), start=1):
        records[f"image-{i:09d}".encode()] = encoded(image, "JPEG")
        records[f"label-{i:09d}".encode()] = label.encode()
    dataset = SceneTextDataset(write_raw_lmdb(tmp_path / "mj", records))
    lr, hr, label = dataset[0]
    assert (lr.shape, hr.shape, label) == ((3, 16, 64), (3, 32, 128), "Hello")
    assert 0 <= hr.min() and hr.max() <= 1
    assert dataset[1][2] == "w0rd!" and dataset[-1][2] == "w0rd!"
    with pytest.raises(IndexError, match="out of range"):
        dataset[2]


def test_round_trip_and_bicubic_lr(tmp_path):
    image = Image.new("RGB", (128, 32), (200, 10, 10))
    count = write_scene_text_lmdb(tmp_path / "words", [(image, "red"), (encoded(image), "again")])
    dataset = SceneTextDataset(tmp_path / "words")
    assert count == len(dataset) == 2
    lr, hr, label = dataset[1]
    assert label == "again"
    assert torch.allclose(hr[:, 0, 0], torch.tensor([200, 10, 10]) / 255)
    assert torch.allclose(
        lr, torch.nn.functional.interpolate(hr[None], size=(16, 64))[0], atol=1e-2
    )


def test_missing_and_corrupt_records_are_named_and_can_be_skipped(tmp_path):
    good = encoded(Image.new("RGB", (128, 32)))
    records = {
        b"num-samples": b"3",
        b"image-000000001": good,
        b"label-000000001": b"ok",
        b"image-000000002": b"not an image",
        b"label-000000002": b"bad",
        b"label-000000003": b"no image",
    }
    path = write_raw_lmdb(tmp_path / "broken", records)
    # a missing key is found when the LMDB is opened; an unreadable image when it is read
    with pytest.raises(TextZoomFormatError, match="record image-000000003 is missing"):
        SceneTextDataset(path)
    unreadable = {key: value for key, value in records.items() if not key.endswith(b"3")}
    dataset = SceneTextDataset(
        write_raw_lmdb(tmp_path / "unreadable", {**unreadable, b"num-samples": b"2"})
    )
    with pytest.raises(TextZoomRecordError, match="image-000000002 is not a readable image"):
        dataset[1]
    with pytest.warns(UserWarning, match="skipped 2 of 3"):
        skipping = SceneTextDataset(path, skip_corrupt=True)
    assert len(skipping) == 1 and [k for k, _ in skipping.skipped] == [2, 3]
    write_raw_lmdb(tmp_path / "uncounted", {b"image-000000001": good})
    with pytest.raises(TextZoomFormatError, match="no 'num-samples' key, not a scene-text LMDB"):
        SceneTextDataset(tmp_path / "uncounted")
    with pytest.raises(FileNotFoundError, match="no scene-text LMDB here"):
        SceneTextDataset(tmp_path / "nowhere")
