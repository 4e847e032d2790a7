"""Using the trained models on your own word crops (`ocrsr upscale`, `ocrsr read`): the inputs
are a folder of images or a TextZoom LMDB split, the outputs PNG files or one reading per
image. Every input becomes one low-resolution image at TextZoom's LR size (16x64), as the
paper's pipelines see their inputs; SR makes it 32x128, the recognizer's input size."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ocrsr_lib.checkpoints import atomic_write, atomic_write_text
from ocrsr_lib.data.textzoom import LR_SIZE, TextZoomDataset, image_tensor
from ocrsr_lib.evaluation import accuracy_of
from ocrsr_lib.models import Bicubic, upscale_batch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
LABELS_FILE = "labels.tsv"  # written beside the PNG files of an upscaled split


class ImageInputs(Dataset):
    """The images of a folder (sorted by name) or the LR images of a TextZoom split, each
    resized (bicubic) to 16x64: `inputs[i]` is `(3x16x64 tensor in [0, 1], name, label)`.

    A split's images are named by their 1-based record index (`000000001`) and keep their raw
    label; a folder's keep their file stem and have no label ("").
    """

    def __init__(self, path: str | os.PathLike, skip_corrupt: bool = False) -> None:
        self.split: TextZoomDataset | None = None
        self.files: list[Path] = []
        self.path = Path(path)
        if (self.path / "data.mdb").is_file():
            self.split = TextZoomDataset(self.path, skip_corrupt=skip_corrupt)
            self.names = [f"{index:09d}" for index in self.split.indices]
        elif self.path.is_dir():
            self.files = image_files(self.path)
            self.names = [file.stem for file in self.files]
        else:
            raise FileNotFoundError(
                f"{self.path}: neither a folder of images nor a TextZoom split (no data.mdb)"
            )

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str, str]:
        if self.split is not None:
            lr, _, label = self.split[i]
            return lr, self.names[i], label
        return image_tensor(read_image(self.files[i])), self.names[i], ""


def image_files(folder: Path) -> list[Path]:
    """The image files directly in a folder, by name; an error when there are none, or when two
    share a stem (their outputs would have one name)."""
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f"{folder}: no images here (looked for {', '.join(IMAGE_SUFFIXES)})"
        )
    stems: dict[str, Path] = {}
    for file in files:
        if file.stem in stems:
            raise ValueError(f"{stems[file.stem]} and {file} would both be written as {file.stem}")
        stems[file.stem] = file
    return files


def read_image(file: Path) -> Image.Image:
    """An image file as RGB at the LR size; an unreadable file is an error naming it."""
    try:
        with Image.open(file) as image:
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(
            f"{file}: not a readable image ({type(error).__name__}: {error})"
        ) from None
    height, width = LR_SIZE
    return rgb.resize((width, height), Image.BICUBIC) if rgb.size != (width, height) else rgb


def batches(
    inputs: ImageInputs, batch_size: int
) -> Iterator[tuple[torch.Tensor, list[str], list[str]]]:
    """(images, names, labels) in order, `batch_size` at a time."""
    yield from DataLoader(inputs, batch_size=batch_size)


def png_bytes(image: torch.Tensor) -> bytes:
    """A 3xHxW image in [0, 1] as PNG file bytes (rounded to 8 bits)."""
    pixels = image.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def output_files(inputs: ImageInputs, folder: Path) -> list[Path]:
    """The files `upscale` writes: one PNG per input, plus `labels.tsv` for a split."""
    files = [folder / f"{name}.png" for name in inputs.names]
    return files + ([folder / LABELS_FILE] if inputs.split is not None else [])


def check_outputs_free(files: Sequence[Path]) -> None:
    """Refuse to replace existing files (they may not be ours): name the first and the count."""
    taken = [file for file in files if file.exists() or file.is_symlink()]
    if taken:
        raise FileExistsError(
            f"{taken[0]} already exists ({len(taken)} of the {len(files)} output files do); "
            "choose an empty folder"
        )


@torch.no_grad()
def upscale(
    model: nn.Module,
    inputs: ImageInputs,
    folder: str | os.PathLike,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
) -> list[Path]:
    """Super-resolve every input with `model` and write `<name>.png` (32x128) to `folder`; for
    a split also `labels.tsv` (file name, raw label). Nothing is replaced; every file is
    written atomically. Returns the files written."""
    folder = Path(folder)
    files = output_files(inputs, folder)
    check_outputs_free(files)
    folder.mkdir(parents=True, exist_ok=True)
    model.to(device).eval()
    written = []
    for images, names, _ in batches(inputs, batch_size):
        for image, name in zip(upscale_batch(model, images.to(device)), names, strict=True):
            written.append(
                atomic_write(folder / f"{name}.png", lambda f, i=image: f.write(png_bytes(i)))
            )
    if inputs.split is not None:
        rows = [
            f"{name}.png\t{label}"
            for name, label in zip(inputs.names, inputs.split.labels(), strict=True)
        ]
        written.append(
            atomic_write_text(folder / LABELS_FILE, "\n".join(["file\tlabel", *rows]) + "\n")
        )
    return written


@dataclass(frozen=True)
class Reading:
    """What the recognizer read in one input image (and the stored label, "" when none)."""

    name: str
    word: str
    label: str


@torch.no_grad()
def read_images(
    recognizer: nn.Module,
    inputs: ImageInputs,
    sr_model: nn.Module | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
) -> list[Reading]:
    """What `recognizer` (anything with `.read(images)`) reads in every input: after
    `sr_model`, or after bicubic upscaling to 32x128 when there is none."""
    recognizer.to(device).eval()
    upscaler = (Bicubic() if sr_model is None else sr_model).to(device).eval()
    readings = []
    for images, names, labels in batches(inputs, batch_size):
        words = recognizer.read(upscale_batch(upscaler, images.to(device)))
        readings += [Reading(*row) for row in zip(names, words, labels, strict=True)]
    return readings


def reading_accuracy(readings: Sequence[Reading]) -> float | None:
    """Word accuracy of labelled readings (TextZoom's rule), None when no input has a label."""
    labelled = [reading for reading in readings if reading.label]
    if not labelled:
        return None
    return accuracy_of([r.word for r in labelled], [r.label for r in labelled])
