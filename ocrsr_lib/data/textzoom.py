"""TextZoom LMDB splits: read them exactly as TextZoom ships them, and write the same format.

A split is an LMDB directory with the keys `num-samples` (ASCII integer), and for
i = 1..num-samples `label-%09d` (UTF-8), `image_hr-%09d` and `image_lr-%09d` (encoded image
files). The reader resizes like TextZoom's loader (bicubic, HR 32x128, LR 16x64).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import lmdb
import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset, Subset

from ocrsr_lib.config import TEXTZOOM_ENV

HR_SIZE = (32, 128)  # (height, width)
LR_SIZE = (16, 64)
TEST_DIFFICULTIES = ("easy", "medium", "hard")


class TextZoomFormatError(ValueError):
    """The folder is not a TextZoom LMDB split (no `num-samples`, unreadable count, ...)."""


class TextZoomRecordError(ValueError):
    """One record of a split is missing or cannot be decoded; names the key and the path."""

    def __init__(self, path: Path, key: str, reason: str) -> None:
        super().__init__(f"{path}: record {key} {reason}")
        self.path = path
        self.key = key


def record_key(field: str, index: int) -> str:
    """The LMDB key of a 1-based record: `label-000000001`, `image_hr-000000001`, ..."""
    return f"{field}-{index:09d}"


_ENVIRONMENTS: dict[Path, tuple[int, lmdb.Environment]] = {}


def _open_readonly(path: Path) -> lmdb.Environment:
    """The process's one read-only, lock-free handle on a split (lmdb allows one per process).

    A handle inherited through fork (DataLoader workers) is closed and reopened in the child.
    """
    path = path.resolve()
    pid, env = _ENVIRONMENTS.get(path, (None, None))
    if env is not None and pid == os.getpid():
        return env
    if env is not None:
        env.close()
    env = lmdb.open(
        str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=126
    )
    _ENVIRONMENTS[path] = (os.getpid(), env)
    return env


def _forget_environment(path: Path) -> None:
    """Close this process's handle on a split that is about to be replaced."""
    pid, env = _ENVIRONMENTS.pop(path.resolve(), (None, None))
    if env is not None and pid == os.getpid():
        env.close()


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """HxWxC uint8 image -> CxHxW float tensor in [0, 1]."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def tsrn_mask(image: Image.Image) -> torch.Tensor:
    """TSRN's mask channel: grayscale pixels at or below the image mean are 1, brighter are 0."""
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    return torch.from_numpy((gray <= gray.mean()).astype(np.float32))[None]


class TextZoomDataset(Dataset):
    """One TextZoom LMDB split. `ds[i]` is `(lr, hr, label)` for the record with key i + 1.

    `lr` is 3x16x64 and `hr` 3x32x128 (4 channels with `mask=True`), floats in [0, 1];
    `label` is the raw stored string. With `skip_corrupt=True` the split is scanned once
    and unreadable records are left out and listed in `skipped`; otherwise they raise.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        mask: bool = False,
        skip_corrupt: bool = False,
        hr_size: tuple[int, int] = HR_SIZE,
        lr_size: tuple[int, int] = LR_SIZE,
    ) -> None:
        self.path = Path(path)
        if not (self.path / "data.mdb").is_file():
            raise FileNotFoundError(f"{self.path}: no TextZoom split here (no data.mdb)")
        self.mask = mask
        self.hr_size = hr_size
        self.lr_size = lr_size
        self.num_samples = self._read_num_samples()
        self.indices = list(range(1, self.num_samples + 1))
        self.skipped: list[tuple[int, str]] = []
        if skip_corrupt:
            self._drop_corrupt_records()

    def _read_num_samples(self) -> int:
        with self._environment().begin() as txn:
            raw = txn.get(b"num-samples")
        if raw is None:
            raise TextZoomFormatError(f"{self.path}: no 'num-samples' key, not a TextZoom split")
        try:
            count = int(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            raise TextZoomFormatError(
                f"{self.path}: 'num-samples' holds {raw[:20]!r}, not an integer"
            ) from None
        if count < 0:
            raise TextZoomFormatError(f"{self.path}: 'num-samples' is negative ({count})")
        return count

    def _environment(self) -> lmdb.Environment:
        return _open_readonly(self.path)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range for {len(self)} samples in {self.path}")
        lr_image, hr_image, label = self.read_record(self.indices[i])
        return self._tensor(lr_image), self._tensor(hr_image), label

    def _tensor(self, image: Image.Image) -> torch.Tensor:
        tensor = _to_tensor(image)
        return torch.cat([tensor, tsrn_mask(image)]) if self.mask else tensor

    def read_record(self, key_index: int) -> tuple[Image.Image, Image.Image, str]:
        """Decode record `key_index` (1-based) into resized RGB LR and HR images and the label."""
        with self._environment().begin() as txn:
            label = self._read_label(txn, key_index)
            hr = self._read_image(txn, record_key("image_hr", key_index), self.hr_size)
            lr = self._read_image(txn, record_key("image_lr", key_index), self.lr_size)
        return lr, hr, label

    def raw_record(self, key_index: int) -> dict[str, bytes | None]:
        """The stored bytes of record `key_index` (1-based), keyed by field name."""
        with self._environment().begin() as txn:
            fields = ("label", "image_hr", "image_lr")
            return {f: txn.get(record_key(f, key_index).encode()) for f in fields}

    def labels(self) -> list[str]:
        """The raw labels of all samples, read without decoding any image."""
        with self._environment().begin() as txn:
            return [self._read_label(txn, key_index) for key_index in self.indices]

    def keys(self) -> list[str]:
        """Every key stored in the split, in LMDB's (lexicographic) order."""
        with self._environment().begin() as txn:
            return [key.decode("ascii", "replace") for key in txn.cursor().iternext(values=False)]

    def _read_label(self, txn: lmdb.Transaction, key_index: int) -> str:
        key = record_key("label", key_index)
        raw = txn.get(key.encode())
        if raw is None:
            raise TextZoomRecordError(self.path, key, "is missing")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise TextZoomRecordError(self.path, key, f"is not UTF-8 text ({error})") from None

    def _read_image(self, txn: lmdb.Transaction, key: str, size: tuple[int, int]) -> Image.Image:
        raw = txn.get(key.encode())
        if raw is None:
            raise TextZoomRecordError(self.path, key, "is missing")
        try:
            with Image.open(io.BytesIO(raw)) as image:
                rgb = image.convert("RGB")
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            raise TextZoomRecordError(
                self.path, key, f"is not a readable image ({type(error).__name__}: {error})"
            ) from None
        height, width = size
        if rgb.size != (width, height):
            rgb = rgb.resize((width, height), Image.BICUBIC)
        return rgb

    def _drop_corrupt_records(self) -> None:
        self.indices, self.skipped = readable_records(self.path, self.indices, self.read_record)


def readable_records(
    path: Path, indices: list[int], read_record: Callable[[int], object]
) -> tuple[list[int], list[tuple[int, str]]]:
    """(indices that decode, [(index, error) of those that do not]), warning when any fail."""
    good, skipped = [], []
    for key_index in indices:
        try:
            read_record(key_index)
        except TextZoomRecordError as error:
            skipped.append((key_index, str(error)))
        else:
            good.append(key_index)
    if skipped:
        warnings.warn(
            f"{path}: skipped {len(skipped)} of {len(indices)} records (first: {skipped[0][1]})",
            stacklevel=4,
        )
    return good, skipped


@dataclass(frozen=True)
class TextZoomSample:
    """One pair to write: images as PIL images or already-encoded file bytes, and the label."""

    lr: Image.Image | bytes
    hr: Image.Image | bytes
    label: str


def encode_image(image: Image.Image | bytes, image_format: str = "PNG", quality: int = 95) -> bytes:
    """Encoded image file bytes; bytes pass through unchanged."""
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    buffer = io.BytesIO()
    options = {"quality": quality} if image_format.upper() in ("JPEG", "JPG") else {}
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def _sample_records(index: int, sample: TextZoomSample | tuple) -> Iterator[tuple[bytes, bytes]]:
    if not isinstance(sample, TextZoomSample):
        sample = TextZoomSample(*sample)
    yield record_key("label", index).encode(), sample.label.encode("utf-8")
    yield record_key("image_hr", index).encode(), encode_image(sample.hr)
    yield record_key("image_lr", index).encode(), encode_image(sample.lr)


def _put_all(env: lmdb.Environment, records: list[tuple[bytes, bytes]]) -> None:
    """Write records in one transaction, doubling the map size whenever it is full."""
    while True:
        try:
            with env.begin(write=True) as txn:
                for key, value in records:
                    txn.put(key, value)
            return
        except lmdb.MapFullError:
            env.set_mapsize(env.info()["map_size"] * 2)


def write_textzoom_lmdb(
    path: str | os.PathLike,
    samples: Iterable[TextZoomSample | tuple],
    commit_every: int = 1000,
) -> int:
    """Write `samples` ((lr, hr, label) each) as a TextZoom split at `path`; return the count.

    The split is built in a temporary folder beside `path` and renamed into place only when
    complete, so an interrupted write never leaves a partial split at `path`.
    """
    records = (list(_sample_records(i, sample)) for i, sample in enumerate(samples, start=1))
    return write_records_lmdb(path, records, commit_every)


def write_records_lmdb(
    path: str | os.PathLike,
    records_per_sample: Iterable[list[tuple[bytes, bytes]]],
    commit_every: int = 1000,
) -> int:
    """Write each sample's (key, value) records and `num-samples` as an LMDB at `path`.

    Built in a temporary folder beside `path` and renamed into place when complete: an
    interrupted write never leaves a partial LMDB at `path`. Returns the sample count.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        env = lmdb.open(str(staging), map_size=64 << 20, subdir=True)
        count = 0
        pending: list[tuple[bytes, bytes]] = []
        for count, records in enumerate(records_per_sample, start=1):
            pending.extend(records)
            if count % commit_every == 0:
                _put_all(env, pending)
                pending = []
        pending.append((b"num-samples", str(count).encode("ascii")))
        _put_all(env, pending)
        env.sync(True)
        env.close()
        _forget_environment(path)
        _replace_directory(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return count


def _replace_directory(new: Path, target: Path) -> None:
    """Move `new` to `target`; an existing `target` is set aside first and removed after."""
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "split")
        os.replace(new, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)


def textzoom_root(root: str | os.PathLike | None = None) -> Path:
    """The real TextZoom root: the argument, else the OCRSR_TEXTZOOM environment variable."""
    chosen = root if root is not None else os.environ.get(TEXTZOOM_ENV)
    if not chosen:
        raise FileNotFoundError(
            f"no TextZoom root given: pass a path or set {TEXTZOOM_ENV} to the folder that holds "
            "train1, train2 and test/{easy,medium,hard}"
        )
    return Path(chosen).expanduser()


def load_textzoom(root: str | os.PathLike | None = None, **options) -> dict[str, Dataset]:
    """The splits of a TextZoom root: `train` (train1 + train2), `easy`, `medium`, `hard`."""
    root = textzoom_root(root)
    folders = {
        "train1": root / "train1",
        "train2": root / "train2",
        **{name: root / "test" / name for name in TEST_DIFFICULTIES},
    }
    missing = [str(folder) for folder in folders.values() if not (folder / "data.mdb").is_file()]
    if missing:
        raise FileNotFoundError(f"{root} is not a TextZoom root; missing splits: {missing}")
    splits = {name: TextZoomDataset(folder, **options) for name, folder in folders.items()}
    return {
        "train": ConcatDataset([splits["train1"], splits["train2"]]),
        **{name: splits[name] for name in TEST_DIFFICULTIES},
    }


def split_labels(dataset: Dataset) -> list[str]:
    """The raw labels of a split, of a concatenation of splits (e.g. `train`) or of a subset."""
    if isinstance(dataset, ConcatDataset):
        return [label for part in dataset.datasets for label in split_labels(part)]
    if isinstance(dataset, Subset):
        labels = split_labels(dataset.dataset)
        return [labels[i] for i in dataset.indices]
    if isinstance(dataset, TextZoomDataset):
        return dataset.labels()
    raise TypeError(f"cannot list the labels of a {type(dataset).__name__}")
