"""Synthetic TextZoom: words rendered as HR 32x128 crops, LR 16x64 made by a change of focus.

TextZoom photographed each scene twice with different focal lengths. We imitate that: a word
is rendered into a sharp scene at twice the HR resolution; HR is that scene downsampled; LR is
the same scene slightly misaligned (the second shot never lines up exactly), defocused with a
disk kernel, integrated onto a 4x coarser sensor grid, exposed a little differently, noisy and
JPEG-compressed. Difficulty levels differ only in degradation strength. Every sample is
determined by (seed, split, index), so generation is reproducible and parallel.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from functools import lru_cache, partial
from multiprocessing.pool import Pool
from pathlib import Path

import matplotlib
import numpy as np
import wordfreq
from PIL import Image, ImageDraw, ImageFont

from ocrsr_lib.data.textzoom import (
    HR_SIZE,
    LR_SIZE,
    TEST_DIFFICULTIES,
    TextZoomSample,
    write_textzoom_lmdb,
)
from ocrsr_lib.progress import progress_bar

GENERATOR_VERSION = 1
SCENE_SCALE = 2  # the sharp scene is rendered at twice the HR resolution
SCENE_SIZE = (HR_SIZE[0] * SCENE_SCALE, HR_SIZE[1] * SCENE_SCALE)
LR_FACTOR = SCENE_SIZE[0] // LR_SIZE[0]  # scene pixels per LR pixel along each axis

# Fonts that ship with matplotlib, so rendering needs nothing beyond the installed packages.
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
)

SPLIT_CODES = {"train1": 1, "train2": 2, "easy": 3, "medium": 4, "hard": 5}


@dataclass(frozen=True)
class Degradation:
    """Ranges a difficulty level draws from (uniformly, per sample)."""

    blur_radius: tuple[float, float]  # defocus disk radius, in HR pixels
    noise_sigma: tuple[float, float]  # sensor read noise, in 8-bit levels
    jpeg_quality: tuple[int, int]


DEGRADATIONS = {
    "easy": Degradation(blur_radius=(0.3, 0.8), noise_sigma=(1.0, 3.0), jpeg_quality=(80, 95)),
    "medium": Degradation(blur_radius=(1.0, 1.6), noise_sigma=(2.5, 5.0), jpeg_quality=(60, 80)),
    "hard": Degradation(blur_radius=(1.8, 2.8), noise_sigma=(4.0, 8.0), jpeg_quality=(40, 65)),
}

# The second shot's misalignment, the same for all difficulties (in HR pixels / degrees).
MAX_SHIFT = (1.0, 0.6)  # x, y
MAX_ROTATION_DEGREES = 1.0
MAX_SCALE_CHANGE = 0.02


def font_paths() -> list[Path]:
    """The font files the generator draws from; a missing one is an error, not a fallback."""
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    paths = [folder / name for name in FONT_FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"fonts missing from the matplotlib installation: {missing}")
    return paths


@lru_cache(maxsize=256)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@dataclass(frozen=True)
class Vocabulary:
    """English words (wordfreq's frequency list); `test_only` words never appear in training."""

    train: tuple[str, ...]
    test_only: tuple[str, ...]


@lru_cache(maxsize=8)
def vocabulary(seed: int, size: int = 20000, held_out_fraction: float = 0.15) -> Vocabulary:
    """Split wordfreq's most frequent English words into training and test-only words."""
    pattern = re.compile(r"^[a-z]+('[a-z]+)?$")
    words = [w for w in wordfreq.top_n_list("en", size) if pattern.match(w) and 2 <= len(w) <= 12]
    words = sorted(set(words))
    order = np.random.default_rng(seed).permutation(len(words))
    held_out = int(len(words) * held_out_fraction)
    shuffled = [words[i] for i in order]
    return Vocabulary(train=tuple(shuffled[held_out:]), test_only=tuple(shuffled[:held_out]))


def _random_case(rng: np.random.Generator, word: str) -> str:
    style = rng.choice(3, p=[0.45, 0.30, 0.25])
    return (word.lower(), word.capitalize(), word.upper())[style]


def _digits(rng: np.random.Generator, low: int, high: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, size=rng.integers(low, high + 1)))


def sample_text(rng: np.random.Generator, vocab: Vocabulary, test: bool) -> str:
    """A label: mostly words in mixed case, also numbers, words with digits or punctuation."""
    words = vocab.test_only if test and rng.random() < 0.5 else vocab.train
    word = _random_case(rng, words[rng.integers(len(words))])
    kind = rng.choice(4, p=[0.72, 0.12, 0.08, 0.08])
    if kind == 1:
        forms = [
            _digits(rng, 1, 6),
            f"{_digits(rng, 1, 3)}.{_digits(rng, 2, 2)}",
            f"{_digits(rng, 1, 4)}-{_digits(rng, 2, 4)}",
            f"{_digits(rng, 1, 2)}/{_digits(rng, 1, 2)}",
        ]
        return forms[rng.choice(4, p=[0.55, 0.2, 0.15, 0.1])]
    if kind == 2:
        digits = _digits(rng, 1, 3)
        return word[:6] + digits if rng.random() < 0.6 else digits + word[:6]
    if kind == 3:
        return word + str(rng.choice(list("!.,:&?")))
    return word


def _perspective_coefficients(output: np.ndarray, source: np.ndarray) -> list[float]:
    """PIL's 8 PERSPECTIVE coefficients mapping output corner points to source points."""
    rows = []
    for (x, y), (u, v) in zip(output, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    return np.linalg.solve(np.array(rows, float), source.reshape(-1)).tolist()


def render_text_mask(rng: np.random.Generator, text: str) -> Image.Image:
    """The word's coverage (L image) with font, size, stroke, rotation, shear and perspective."""
    font = _font(str(font_paths()[rng.integers(len(FONT_FILES))]), int(rng.integers(44, 60)))
    left, top, right, bottom = font.getbbox(text)
    width, height = right - left, bottom - top
    pad = int(0.6 * height + 0.08 * width) + 4
    canvas = Image.new("L", (width + 2 * pad, height + 2 * pad), 0)
    stroke = int(rng.choice(3, p=[0.75, 0.2, 0.05]))
    ImageDraw.Draw(canvas).text(
        (pad - left, pad - top), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255
    )
    w, h = canvas.size
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    centre = np.array([w / 2, h / 2])
    angle = np.deg2rad(rng.uniform(-4, 4))
    shear = rng.uniform(-0.2, 0.2)
    linear = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = linear @ np.array([[1, shear], [0, 1]])
    moved = (corners - centre) @ linear.T + centre
    moved += rng.uniform(-0.04, 0.04, size=(4, 2)) * np.array([height * 4, height])
    warped = canvas.transform(
        canvas.size, Image.PERSPECTIVE, _perspective_coefficients(moved, corners), Image.BILINEAR
    )
    x0, y0, x1, y1 = warped.getbbox() or (0, 0, w, h)
    margin_x = rng.uniform(0.05, 0.45, size=2) * height
    margin_y = rng.uniform(0.05, 0.30, size=2) * height
    box = (x0 - margin_x[0], y0 - margin_y[0], x1 + margin_x[1], y1 + margin_y[1])
    return warped.crop(tuple(int(round(v)) for v in box))


def _luminance(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.299, 0.587, 0.114]))


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background and text colours with at least 0.35 luminance contrast."""
    background = rng.uniform(0, 1, 3)
    for _ in range(20):
        text = rng.uniform(0, 1, 3)
        if abs(_luminance(text) - _luminance(background)) >= 0.35:
            return background, text
    return background, np.full(3, 0.0 if _luminance(background) > 0.5 else 1.0)


def _background(rng: np.random.Generator, colour: np.ndarray) -> np.ndarray:
    """A solid, gradient or smooth-textured background at scene size, floats in [0, 1]."""
    height, width = SCENE_SIZE
    image = np.broadcast_to(colour, (height, width, 3)).astype(np.float32)
    kind = rng.choice(3, p=[0.4, 0.3, 0.3])
    if kind == 1:
        direction = rng.uniform(-1, 1, 2)
        ys, xs = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
        ramp = direction[0] * (ys - 0.5) + direction[1] * (xs - 0.5)
        image = image + (rng.uniform(0.1, 0.3) * ramp)[..., None]
    elif kind == 2:
        coarse = rng.normal(0, rng.uniform(0.04, 0.12), size=(4, 16, 3)).astype(np.float32)
        texture = np.stack(
            [
                np.asarray(Image.fromarray(c).resize((width, height), Image.BICUBIC))
                for c in coarse.transpose(2, 0, 1)
            ],
            axis=-1,
        )
        image = image + texture
    return image


def render_scene(rng: np.random.Generator, text: str) -> np.ndarray:
    """The sharp scene (SCENE_SIZE, RGB uint8): the word composited onto a background."""
    height, width = SCENE_SIZE
    mask = render_text_mask(rng, text).resize((width, height), Image.BICUBIC)
    alpha = (np.asarray(mask, np.float32) / 255.0)[..., None]
    background, foreground = _colours(rng)
    image = _background(rng, background)
    if rng.random() < 0.2:
        shift = rng.integers(1, 4, size=2)
        shadow = np.roll(alpha, tuple(shift), axis=(0, 1))
        image = image * (1 - 0.6 * shadow)
    image = image * (1 - alpha) + foreground.astype(np.float32) * alpha
    if rng.random() < 0.3:
        ramp = np.linspace(-1, 1, width, dtype=np.float32)[None, :, None] * rng.uniform(-0.15, 0.15)
        image = image * (1 + ramp)
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def scene_to_hr(scene: np.ndarray) -> Image.Image:
    """HR: the sharp scene downsampled (antialiased bicubic) to 32x128."""
    return Image.fromarray(scene).resize((HR_SIZE[1], HR_SIZE[0]), Image.BICUBIC)


def misalign(rng: np.random.Generator, scene: np.ndarray) -> np.ndarray:
    """A small random shift, rotation and scale, as between two real shots of one scene."""
    height, width = scene.shape[:2]
    pad = 8
    padded = Image.fromarray(np.pad(scene, ((pad, pad), (pad, pad), (0, 0)), mode="reflect"))
    shift = rng.uniform(-1, 1, 2) * np.array(MAX_SHIFT) * SCENE_SCALE
    angle = np.deg2rad(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
    scale = 1 + rng.uniform(-MAX_SCALE_CHANGE, MAX_SCALE_CHANGE)
    inverse = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]]) / scale
    centre = np.array([padded.width / 2, padded.height / 2])
    offset = centre - inverse @ (centre + shift)
    coefficients = (*inverse[0], offset[0], *inverse[1], offset[1])
    moved = padded.transform(padded.size, Image.AFFINE, coefficients, Image.BICUBIC)
    return np.asarray(moved)[pad : pad + height, pad : pad + width]


def defocus_kernel(radius: float) -> np.ndarray:
    """A normalised disk (out-of-focus point spread), antialiased by 4x supersampling."""
    half = int(np.ceil(radius)) + 1
    fine = (np.arange(-half * 4, half * 4 + 4) + 0.5) / 4 - 0.5
    ys, xs = np.meshgrid(fine, fine, indexing="ij")
    disk = (xs**2 + ys**2 <= max(radius, 0.5) ** 2).astype(np.float64)
    size = 2 * half + 1
    kernel = disk[: size * 4, : size * 4].reshape(size, 4, size, 4).mean(axis=(1, 3))
    return kernel / kernel.sum()


def defocus(image: np.ndarray, radius: float) -> np.ndarray:
    """Convolve each channel with the disk kernel (FFT, reflected borders); floats out."""
    kernel = defocus_kernel(radius)
    half = kernel.shape[0] // 2
    padded = np.pad(image.astype(np.float64), ((half, half), (half, half), (0, 0)), mode="reflect")
    height, width = padded.shape[:2]
    spectrum = np.fft.rfft2(padded, axes=(0, 1))
    kernel_spectrum = np.fft.rfft2(kernel, s=(height, width))
    blurred = np.fft.irfft2(spectrum * kernel_spectrum[..., None], s=(height, width), axes=(0, 1))
    # the kernel's centre sits at (half, half), so the valid region starts at 2 * half
    return blurred[2 * half : 2 * half + image.shape[0], 2 * half : 2 * half + image.shape[1]]


def sensor_sample(image: np.ndarray) -> np.ndarray:
    """Integrate the scene over the coarse sensor's pixels (box average, 4x4 scene pixels)."""
    height, width = image.shape[0] // LR_FACTOR, image.shape[1] // LR_FACTOR
    return image.reshape(height, LR_FACTOR, width, LR_FACTOR, 3).mean(axis=(1, 3))


@dataclass
class SyntheticPair:
    """One generated pair: stored bytes, decoded images, label and how it was made."""

    lr: Image.Image
    hr: Image.Image
    label: str
    difficulty: str
    lr_bytes: bytes
    hr_bytes: bytes
    parameters: dict[str, float]
    stages: dict[str, np.ndarray] = field(default_factory=dict)


def degrade(
    rng: np.random.Generator, scene: np.ndarray, difficulty: str, keep_stages: bool = False
) -> tuple[bytes, dict[str, float], dict[str, np.ndarray]]:
    """The LR shot of a scene: misalign, defocus, sensor sampling, exposure, noise, JPEG."""
    levels = DEGRADATIONS[difficulty]
    radius = rng.uniform(*levels.blur_radius)
    sigma = rng.uniform(*levels.noise_sigma)
    quality = int(rng.integers(levels.jpeg_quality[0], levels.jpeg_quality[1] + 1))
    gain = rng.uniform(0.94, 1.06) * rng.uniform(0.98, 1.02, 3)
    offset = rng.uniform(-5, 5)
    stages: dict[str, np.ndarray] = {}
    moved = misalign(rng, scene)
    blurred = defocus(moved, radius * SCENE_SCALE)
    sampled = sensor_sample(blurred)
    exposed = sampled * gain + offset
    noise_std = sigma * (0.6 + 0.8 * np.clip(exposed, 0, 255) / 255)
    noisy = np.clip(exposed + rng.normal(size=exposed.shape) * noise_std, 0, 255)
    buffer = io.BytesIO()
    Image.fromarray((noisy + 0.5).astype(np.uint8)).save(buffer, format="JPEG", quality=quality)
    if keep_stages:
        for name, image in [
            ("scene", scene),
            ("misaligned", moved),
            ("defocused", blurred),
            ("sensor", sampled),
            ("exposure", exposed),
            ("noise", noisy),
        ]:
            stages[name] = (np.clip(image, 0, 255) + 0.5).astype(np.uint8)
    parameters = {
        "blur_radius": radius,
        "noise_sigma": sigma,
        "jpeg_quality": quality,
        "gain": float(gain.mean()),
        "offset": offset,
    }
    return buffer.getvalue(), parameters, stages


def synthesize_pair(
    seed: int, split: str, index: int, difficulty: str | None = None, keep_stages: bool = False
) -> SyntheticPair:
    """Pair `index` of `split`, fully determined by (seed, split, index). Explained in chapter 1."""
    rng = np.random.default_rng((seed, SPLIT_CODES[split], index))
    if difficulty is None:
        difficulty = split if split in DEGRADATIONS else TEST_DIFFICULTIES[rng.integers(3)]
    label = sample_text(rng, vocabulary(seed), test=split in DEGRADATIONS)
    scene = render_scene(rng, label)
    hr = scene_to_hr(scene)
    lr_bytes, parameters, stages = degrade(rng, scene, difficulty, keep_stages)
    hr_buffer = io.BytesIO()
    hr.save(hr_buffer, format="PNG")
    lr = Image.open(io.BytesIO(lr_bytes)).convert("RGB")
    if keep_stages:
        stages["jpeg"] = np.asarray(lr)
    return SyntheticPair(
        lr, hr, label, difficulty, lr_bytes, hr_buffer.getvalue(), parameters, stages
    )


def _lmdb_sample(seed: int, split: str, index: int) -> TextZoomSample:
    pair = synthesize_pair(seed, split, index)
    return TextZoomSample(lr=pair.lr_bytes, hr=pair.hr_bytes, label=pair.label)


def worker_pool(workers: int) -> AbstractContextManager:
    """Processes that render pairs; each imports the library once (seconds), so one pool serves
    every split generated together."""
    if workers <= 1:
        return nullcontext(None)
    return multiprocessing.get_context("spawn").Pool(workers)


def iterate_split(
    seed: int, split: str, count: int, pool: Pool | None = None
) -> Iterator[TextZoomSample]:
    """The samples of a split in order, rendered by `pool` (a `worker_pool`) or in-process."""
    make = partial(_lmdb_sample, seed, split)
    if pool is None:
        yield from map(make, range(1, count + 1))
        return
    yield from pool.imap(make, range(1, count + 1), chunksize=32)


def generate_split(
    path: str | Path,
    split: str,
    count: int,
    seed: int = 0,
    workers: int | None = None,
    pool: Pool | None = None,
) -> int:
    """Render `count` pairs of `split` and write them as a TextZoom LMDB split at `path`, with
    `pool` when given, else with `workers` processes (default: up to 4)."""
    if pool is None and default_workers(workers) > 1:
        with worker_pool(default_workers(workers)) as own_pool:
            return generate_split(path, split, count, seed, pool=own_pool)
    samples = iterate_split(seed, split, count, pool)
    progress = progress_bar(samples, total=count, desc=f"synthetic {split}", leave=False)
    return write_textzoom_lmdb(path, progress)


def default_workers(workers: int | None) -> int:
    """Rendering processes: as asked, else one per core up to 4."""
    return workers if workers is not None else min(4, multiprocessing.cpu_count())


def split_sizes(train_pairs: int, test_pairs: tuple[int, int, int]) -> dict[str, int]:
    """Pairs per split; train1 and train2 in TextZoom's proportion (14,573 : 2,794)."""
    train1 = round(train_pairs * 14573 / 17367)
    sizes = {"train1": train1, "train2": train_pairs - train1}
    sizes.update(dict(zip(TEST_DIFFICULTIES, test_pairs, strict=True)))
    return sizes


def split_folder(root: Path, split: str) -> Path:
    """TextZoom's layout: train1, train2 and test/{easy,medium,hard}."""
    return root / "test" / split if split in TEST_DIFFICULTIES else root / split


def generator_settings(train_pairs: int, test_pairs: tuple[int, int, int], seed: int) -> dict:
    """What determines a synthetic TextZoom's content (its folder name hashes it)."""
    return {
        "version": GENERATOR_VERSION,
        "train_pairs": train_pairs,
        "test_pairs": list(test_pairs),
        "seed": seed,
    }


def synthetic_textzoom_root(
    cache: Path, train_pairs: int, test_pairs: tuple[int, int, int], seed: int = 0
) -> Path:
    """Where the synthetic TextZoom with these settings lives; pure (nothing is generated)."""
    settings = generator_settings(train_pairs, test_pairs, seed)
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return Path(cache) / "datasets" / f"synthetic-textzoom-{digest}"


def ensure_synthetic_textzoom(
    cache: Path,
    train_pairs: int,
    test_pairs: tuple[int, int, int],
    seed: int = 0,
    workers: int | None = None,
) -> Path:
    """A synthetic TextZoom root in the cache, generated on first use (split by split)."""
    root = synthetic_textzoom_root(cache, train_pairs, test_pairs, seed)
    missing = {
        split: count
        for split, count in split_sizes(train_pairs, test_pairs).items()
        if not (split_folder(root, split) / "data.mdb").is_file()
    }
    if missing:
        with worker_pool(default_workers(workers)) as pool:
            for split, count in missing.items():
                generate_split(split_folder(root, split), split, count, seed, workers=1, pool=pool)
    settings_file = root / "generator.json"
    if not settings_file.is_file():
        settings = generator_settings(train_pairs, test_pairs, seed)
        settings_file.write_text(json.dumps({**settings, **degradation_settings()}, indent=2))
    return root


def degradation_settings() -> dict[str, dict]:
    """The difficulty settings, for the record written beside a generated dataset."""
    return {"degradations": {name: asdict(level) for name, level in DEGRADATIONS.items()}}
