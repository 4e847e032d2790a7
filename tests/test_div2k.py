"""DIV2K pretraining pairs: crops of the right size from HR PNGs, LR from DIV2K's x2 folder or
made by bicubic downscaling, clear errors on bad folders, and the session and recipes using
them when a folder is named."""

import numpy as np
import pytest
import torch
from PIL import Image

from ocrsr_lib.config import setup
from ocrsr_lib.data.div2k import DIV2KPairs, div2k_files, div2k_identity
from ocrsr_lib.runs import recipe_for
from ocrsr_lib.runs.sr import key_parts, pretraining_data, recipe_data


def write_png(path, height, width, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def div2k(tmp_path):
    for i in range(3):
        write_png(tmp_path / "DIV2K_train_HR" / f"{i:04d}.png", 100, 300, i)
    return tmp_path


def test_pairs_are_text_sized_deterministic_crops_with_bicubic_lr(div2k):
    pairs = DIV2KPairs(div2k, count=5, seed=0)
    lr, hr, label = pairs[3]
    assert lr.shape == (3, 16, 64) and hr.shape == (3, 32, 128) and label == ""
    assert 0 <= lr.min() and hr.max() <= 1
    again = DIV2KPairs(div2k, count=5, seed=0)[3]
    assert torch.equal(again[0], lr) and torch.equal(again[1], hr)
    hr_image = Image.fromarray((hr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    expected = np.asarray(hr_image.resize((64, 16), Image.BICUBIC), np.float32) / 255
    np.testing.assert_allclose(lr.permute(1, 2, 0).numpy(), expected, atol=1 / 255)
    assert not torch.equal(DIV2KPairs(div2k, count=5, seed=1)[3][1], hr)
    with pytest.raises(IndexError, match="index 5 is out of range for 5 pairs"):
        pairs[5]


def test_lr_comes_from_the_x2_folder_at_half_the_hr_coordinates(div2k):
    for i in range(3):
        write_png(div2k / "DIV2K_train_LR_bicubic" / "X2" / f"{i:04d}x2.png", 50, 150, 10 + i)
    lr, hr, _ = DIV2KPairs(div2k, count=2, seed=0)[1]
    found = []
    for i in range(3):
        full_hr = np.asarray(Image.open(div2k / "DIV2K_train_HR" / f"{i:04d}.png"), np.float32)
        full_lr = np.asarray(
            Image.open(div2k / "DIV2K_train_LR_bicubic" / "X2" / f"{i:04d}x2.png"), np.float32
        )
        for top in range(0, 100 - 32 + 1, 2):
            for left in range(0, 300 - 128 + 1, 2):
                if np.array_equal(
                    full_hr[top : top + 32, left : left + 128] / 255, hr.permute(1, 2, 0).numpy()
                ):
                    half = full_lr[top // 2 : top // 2 + 16, left // 2 : left // 2 + 64] / 255
                    found.append(np.array_equal(half, lr.permute(1, 2, 0).numpy()))
    assert found == [True]
    assert "x2-folder" in div2k_identity(div2k)


def test_bad_folders_are_refused_naming_what_is_wrong(tmp_path, div2k):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        div2k_files(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no HR PNG images"):
        div2k_files(tmp_path / "empty")
    write_png(div2k / "DIV2K_train_LR_bicubic" / "X2" / "0000x2.png", 50, 150, 0)
    with pytest.raises(FileNotFoundError, match="lacks the LR images of 2"):
        div2k_files(div2k)
    write_png(tmp_path / "small" / "0.png", 20, 60, 0)
    with pytest.raises(ValueError, match="is 60x20, under 128x32"):
        DIV2KPairs(tmp_path / "small", count=1)[0]


def test_a_named_folder_replaces_the_synthetic_pretraining_images_and_enters_the_key(
    div2k, monkeypatch
):
    monkeypatch.setenv("OCRSR_DIV2K", str(div2k))
    demo = setup("demo", device="cpu", verbose=False)
    assert demo.div2k is None  # the environment names DIV2K for the paper profile only
    assert "synthetic natural images" in pretraining_data(demo)
    named = setup("demo", device="cpu", verbose=False, div2k=div2k)
    recipe = recipe_for(named, "edsr-natural")
    train, validation = recipe_data(named, recipe)
    assert isinstance(train, DIV2KPairs) and list(validation) == ["div2k-validation"]
    assert key_parts(named, recipe)["data"] != key_parts(demo, recipe)["data"]
    assert "DIV2K photographs" in pretraining_data(named)
    monkeypatch.setenv("OCRSR_TEXTZOOM", str(div2k))
    assert setup("paper", device="cpu", verbose=False).div2k == div2k
