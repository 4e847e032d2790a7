"""DIV2K photographs as the SR model's non-text pretraining pairs, the paper's pretraining data,
when a folder is named (OCRSR_DIV2K, `--div2k`, `setup(div2k=...)`). HR are DIV2K's PNGs
(`DIV2K_train_HR/` under the folder, or the folder itself); LR are read from DIV2K's own x2
bicubic folder (`DIV2K_train_LR_bicubic/X2/<name>x2.png`) when it is there, else made the same
way, by antialiased bicubic x2 downscaling. Each pair is a text-sized random crop: 32x128 HR
and the 16x64 LR crop of the same place. Without a folder the synthetic natural images of
`ocrsr_lib.data.natural` stand in (offline fallback)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ocrsr_lib.data.natural import pil_to_tensor
from ocrsr_lib.data.textzoom import HR_SIZE, LR_SIZE

HR_FOLDER = "DIV2K_train_HR"
LR_FOLDER = Path("DIV2K_train_LR_bicubic") / "X2"


def div2k_files(root: str | Path) -> list[tuple[Path, Path | None]]:
    """(HR PNG, its LR PNG or None) for every HR image of a DIV2K folder, sorted by name."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"DIV2K folder {root} does not exist")
    hr_folder = root / HR_FOLDER if (root / HR_FOLDER).is_dir() else root
    hr_files = sorted(hr_folder.glob("*.png"))
    if not hr_files:
        raise FileNotFoundError(f"no HR PNG images in {hr_folder} (DIV2K's {HR_FOLDER}/*.png)")
    lr_folder = root / LR_FOLDER
    if not lr_folder.is_dir():
        return [(hr, None) for hr in hr_files]
    pairs = [(hr, lr_folder / f"{hr.stem}x2.png") for hr in hr_files]
    missing = [str(lr) for _, lr in pairs if not lr.is_file()]
    if missing:
        raise FileNotFoundError(f"{lr_folder} lacks the LR images of {len(missing)}: {missing[:3]}")
    return pairs


def div2k_identity(root: str | Path) -> str:
    """What identifies a DIV2K folder in a run's key: its path, its images and the LR source."""
    pairs = div2k_files(root)
    lr = "x2-folder" if pairs[0][1] is not None else "bicubic"
    return f"div2k:{Path(root).expanduser().resolve()}:{len(pairs)}:{lr}"


@lru_cache(maxsize=8)
def _rgb(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    return image.convert("RGB")


class DIV2KPairs(Dataset):
    """`count` deterministic (lr, hr, "") crops of a DIV2K folder, 16x64 and 32x128."""

    def __init__(self, root: str | Path, count: int, seed: int = 0) -> None:
        self.pairs = div2k_files(root)
        self.count, self.seed = count, seed

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        if not 0 <= index < self.count:
            raise IndexError(f"index {index} is out of range for {self.count} pairs")
        rng = np.random.default_rng((self.seed, 2, index))
        hr_path, lr_path = self.pairs[int(rng.integers(len(self.pairs)))]
        image = _rgb(hr_path)
        (height, width), (lr_height, lr_width) = HR_SIZE, LR_SIZE
        if image.width < width or image.height < height:
            raise ValueError(f"{hr_path} is {image.width}x{image.height}, under {width}x{height}")
        left = 2 * int(rng.integers(0, (image.width - width) // 2 + 1))
        top = 2 * int(rng.integers(0, (image.height - height) // 2 + 1))
        hr = image.crop((left, top, left + width, top + height))
        if lr_path is None:
            lr = hr.resize((lr_width, lr_height), Image.BICUBIC)
        else:
            lr = _rgb(lr_path).crop(
                (left // 2, top // 2, left // 2 + lr_width, top // 2 + lr_height)
            )
        return pil_to_tensor(lr), pil_to_tensor(hr), ""
