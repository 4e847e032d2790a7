"""Non-text training pairs for generic SR pretraining, made from what is installed offline.

The paper's EDSR was pretrained on DIV2K photographs; DIV2K cannot be downloaded here. Two
sources stand in: procedural "dead leaves" images (overlapping disks with a power-law size
distribution, a classic model of natural-image statistics with sharp occlusion edges) and
crops of the photograph and terrain maps that ship with matplotlib. LR is the HR crop
downsampled x2 with antialiased bicubic, DIV2K's own degradation.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from ocrsr_lib.data.textzoom import HR_SIZE, LR_SIZE

SAMPLE_DATA = Path(matplotlib.get_data_path()) / "sample_data"
PHOTO_FILES = ("grace_hopper.jpg",)
TERRAIN_FILES = ("jacksboro_fault_dem.npz", "topobathy.npz")


def dead_leaves(rng: np.random.Generator, size: tuple[int, int], disks: int = 300) -> Image.Image:
    """Opaque random-coloured disks dropped one on another; radii follow p(r) ~ r^-3."""
    height, width = size
    canvas = Image.new("RGB", (width, height), tuple(int(c) for c in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(canvas)
    smallest, largest = 1.0, max(height, width) / 2
    uniform = rng.uniform(size=disks)
    # inverse CDF of p(r) ~ r^-3 on [smallest, largest]
    radii = 1 / np.sqrt(1 / smallest**2 - uniform * (1 / smallest**2 - 1 / largest**2))
    centres = rng.uniform((0, 0), (width, height), size=(disks, 2))
    colours = rng.integers(0, 256, size=(disks, 3))
    for radius, (x, y), colour in zip(radii, centres, colours, strict=True):
        draw.ellipse(
            (x - radius, y - radius, x + radius, y + radius), fill=tuple(int(c) for c in colour)
        )
    return canvas


@lru_cache(maxsize=4)
def bundled_images() -> tuple[Image.Image, ...]:
    """matplotlib's sample photograph and its terrain maps rendered with colour maps."""
    images = [Image.open(SAMPLE_DATA / name).convert("RGB") for name in PHOTO_FILES]
    for name, colour_map in zip(TERRAIN_FILES, ("terrain", "gist_earth"), strict=True):
        with np.load(SAMPLE_DATA / name) as archive:
            heights = np.asarray(archive[archive.files[0]], np.float64)
        scaled = (heights - heights.min()) / np.ptp(heights)
        images.append(
            Image.fromarray((colormaps[colour_map](scaled)[..., :3] * 255).astype(np.uint8))
        )
    missing = [name for name in PHOTO_FILES + TERRAIN_FILES if not (SAMPLE_DATA / name).is_file()]
    if missing:
        raise FileNotFoundError(f"matplotlib sample data missing: {missing}")
    return tuple(images)


def bundled_crop(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A random crop (random scale, 4:1 like the text crops) of one bundled image."""
    images = bundled_images()
    image = images[rng.integers(len(images))]
    height, width = size
    crop_width = int(min(image.width, rng.uniform(0.3, 1.0) * image.width))
    crop_height = max(8, crop_width * height // width)
    crop_height = min(crop_height, image.height)
    left = int(rng.integers(0, image.width - crop_width + 1))
    top = int(rng.integers(0, image.height - crop_height + 1))
    crop = image.crop((left, top, left + crop_width, top + crop_height))
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return crop.resize((width, height), Image.BICUBIC)


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a (3, H, W) float tensor in [0, 1]."""
    return torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1).contiguous()


class NaturalImagePairs(Dataset):
    """`count` deterministic (lr, hr, "") pairs of non-text images, 16x64 and 32x128."""

    def __init__(self, count: int, seed: int = 0, photo_share: float = 0.3) -> None:
        self.count = count
        self.seed = seed
        self.photo_share = photo_share

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        if not 0 <= index < self.count:
            raise IndexError(f"index {index} is out of range for {self.count} pairs")
        rng = np.random.default_rng((self.seed, 99, index))
        if rng.random() < self.photo_share:
            hr = bundled_crop(rng, HR_SIZE)
        else:
            large = dead_leaves(rng, (HR_SIZE[0] * 2, HR_SIZE[1] * 2))
            hr = large.resize((HR_SIZE[1], HR_SIZE[0]), Image.BICUBIC)
        lr = hr.resize((LR_SIZE[1], LR_SIZE[0]), Image.BICUBIC)
        return pil_to_tensor(lr), pil_to_tensor(hr), ""
