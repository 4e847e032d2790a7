"""Scene-text recognition LMDBs (MJSynth, SynthText, the usual benchmarks), as CDistNet reads them.

Keys: `num-samples`, and for i = 1..num-samples `image-%09d` (an encoded image) and
`label-%09d` (UTF-8). Items are TextZoom-shaped triples (lr, hr, label): `hr` is the image
resized to 32x128 and `lr` its bicubic 16x64 version, so the same training loops read both kinds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
from PIL import Image
from torch.utils.data import Dataset

from ocrsr_lib.data.textzoom import (
    HR_SIZE,
    LR_SIZE,
    TextZoomDataset,
    TextZoomFormatError,
    encode_image,
    image_tensor,
    record_key,
    write_records_lmdb,
)

SCENE_TEXT_FIELDS = ("label", "image")  # the keys of one record, read in this order


class SceneTextDataset(Dataset):
    """One scene-text LMDB; `ds[i]` is (lr, hr, label) for the record with key i + 1.

    Opening checks the file and that every record's keys are there. Missing or unreadable
    records raise an error naming the key; `skip_corrupt=True` leaves them out after one scan
    and lists them in `skipped`.
    """

    def __init__(self, path: str | os.PathLike, skip_corrupt: bool = False) -> None:
        # the TextZoom reader knows the LMDB conventions (checks, count, keys, errors, handles)
        try:
            self._reader = TextZoomDataset(
                path, skip_corrupt=skip_corrupt, fields=SCENE_TEXT_FIELDS
            )
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no scene-text LMDB here (no data.mdb)") from None
        except TextZoomFormatError as error:
            message = str(error).replace("TextZoom split", "scene-text LMDB")
            raise TextZoomFormatError(message) from None
        self.path = self._reader.path
        self.num_samples = self._reader.num_samples
        self.indices = self._reader.indices
        self.skipped = self._reader.skipped

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range for {len(self)} samples in {self.path}")
        image, label = self.read_record(self.indices[i])
        low = image.resize((LR_SIZE[1], LR_SIZE[0]), Image.BICUBIC)
        return image_tensor(low), image_tensor(image), label

    def read_record(self, key_index: int) -> tuple[Image.Image, str]:
        """Decode record `key_index` (1-based): the RGB image at 32x128 and its label."""
        reader = self._reader
        with reader._reading() as txn:
            label = reader._read_label(txn, key_index)
            image = reader._read_image(txn, record_key("image", key_index), HR_SIZE)
        return image, label


def write_scene_text_lmdb(
    path: str | os.PathLike,
    samples: Iterable[tuple[Image.Image | bytes, str]],
    *,
    overwrite: bool = False,
) -> int:
    """Write (image, label) pairs as a scene-text LMDB at `path`, atomically; return the count.

    An existing LMDB is replaced only with `overwrite=True`; anything else is never replaced.
    """
    records = (
        [
            (record_key("image", i).encode(), encode_image(image)),
            (record_key("label", i).encode(), label.encode("utf-8")),
        ]
        for i, (image, label) in enumerate(samples, start=1)
    )
    return write_records_lmdb(path, records, overwrite=overwrite)
