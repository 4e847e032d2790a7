"""Shared fixtures: small LMDB splits written the way TextZoom's are."""

from __future__ import annotations

import io
from pathlib import Path

import lmdb
import numpy as np
import pytest
from PIL import Image


def encoded(image: Image.Image, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def random_image(rng: np.random.Generator, size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """A random image of (width, height) in the given PIL mode."""
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    array = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(array[..., 0] if channels == 1 else array, mode=mode)


def write_raw_lmdb(path: Path, records: dict[bytes, bytes]) -> Path:
    """Write raw key/value records with plain lmdb, independently of the library's writer."""
    env = lmdb.open(str(path), map_size=32 << 20)
    with env.begin(write=True) as txn:
        for key, value in records.items():
            txn.put(key, value)
    env.close()
    return path


def raw_records(count: int, seed: int, label: str = "w") -> dict[bytes, bytes]:
    """`count` random TextZoom records (PNG, at the stored sizes) labelled `<label><index>`."""
    rng = np.random.default_rng(seed)
    records = {b"num-samples": str(count).encode()}
    for i in range(1, count + 1):
        records[b"label-%09d" % i] = f"{label}{i}".encode()
        records[b"image_hr-%09d" % i] = encoded(random_image(rng, (128, 32)))
        records[b"image_lr-%09d" % i] = encoded(random_image(rng, (64, 16)))
    return records


@pytest.fixture
def textzoom_like(tmp_path: Path) -> tuple[Path, list[tuple[Image.Image, Image.Image, str]]]:
    """A 4-record split as TextZoom stores them: odd sizes, PNG and JPEG, grayscale and RGBA."""
    rng = np.random.default_rng(0)
    pairs = [
        (random_image(rng, (64, 16)), random_image(rng, (128, 32)), "Hello", "PNG"),
        (random_image(rng, (51, 13)), random_image(rng, (170, 41)), "WORLD!", "JPEG"),
        (random_image(rng, (70, 20), "L"), random_image(rng, (140, 36), "L"), "a-b", "PNG"),
        (random_image(rng, (64, 16), "RGBA"), random_image(rng, (128, 32), "RGBA"), "çafé", "PNG"),
    ]
    records = {b"num-samples": str(len(pairs)).encode()}
    for index, (lr, hr, label, image_format) in enumerate(pairs, start=1):
        records[b"label-%09d" % index] = label.encode("utf-8")
        records[b"image_hr-%09d" % index] = encoded(hr, image_format)
        records[b"image_lr-%09d" % index] = encoded(lr, image_format)
    path = write_raw_lmdb(tmp_path / "split", records)
    return path, [(lr, hr, label) for lr, hr, label, _ in pairs]


@pytest.fixture
def tiny_recipes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 60-pair synthetic TextZoom, a fresh cache, and tiny demo SR recipes; returns the root."""
    from ocrsr_lib.data.synth import generate_split
    from ocrsr_lib.runs import sr
    from ocrsr_lib.train import TrainConfig

    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "textzoom"
    generate_split(root / "train1", "train1", 50, seed=0, workers=1)
    generate_split(root / "train2", "train2", 10, seed=0, workers=1)
    for name in ("easy", "medium", "hard"):
        generate_split(root / "test" / name, name, 4, seed=0, workers=1)
    tiny = TrainConfig(steps=4, batch_size=4, learning_rate=1e-3)
    demo = {
        "edsr-natural": sr.SRRecipe("edsr", "demo", "mse", tiny, "natural", 16),
        "stn-edsr": sr.SRRecipe("stn-edsr", "demo", "mse", tiny, start_from="edsr-natural"),
        "edsr": sr.SRRecipe("edsr", "demo", "mse", tiny),
    }
    monkeypatch.setitem(sr.SR_RECIPES, "demo", demo)
    return root


@pytest.fixture
def tiny_cdistnet(tiny_recipes, monkeypatch):
    """tiny_recipes plus tiny CDistNet recipes (pretrain, fine-tunes on HR and on stn-edsr);
    returns a demo session on the tiny TextZoom."""
    from ocrsr_lib.config import setup
    from ocrsr_lib.runs import cdistnet
    from ocrsr_lib.train import TrainConfig

    tiny = TrainConfig(steps=2, batch_size=4, learning_rate=1e-3)
    recipe = cdistnet.CDistNetRecipe
    demo = {
        "pretrain": recipe("demo", tiny),
        "finetune-hr": recipe("demo", tiny, "hr", "pretrain"),
        "finetune-stn-edsr": recipe("demo", tiny, "stn-edsr", "pretrain", augment=False),
    }
    monkeypatch.setitem(cdistnet.CDISTNET_RECIPES, "demo", demo)
    return setup("demo", device="cpu", textzoom=tiny_recipes, verbose=False)
