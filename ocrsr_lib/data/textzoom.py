"""TextZoom LMDB splits: read them exactly as TextZoom ships them, and write the same format.

A split is an LMDB directory with the keys `num-samples` (ASCII integer), and for
i = 1..num-samples `label-%09d` (UTF-8), `image_hr-%09d` and `image_lr-%09d` (encoded image
files). The reader resizes like TextZoom's loader (bicubic, HR 32x128, LR 16x64).

Opening a split checks its file before any record is read: lmdb maps `data.mdb` into memory,
and reading a page past the end of a truncated file kills the process (SIGBUS) instead of
raising, so a half-copied file must be refused from its size alone.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import lmdb
import numpy as np
import torch
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset, Subset

from ocrsr_lib.checkpoints import follow_umask
from ocrsr_lib.config import TEXTZOOM_ENV

HR_SIZE = (32, 128)  # (height, width)
LR_SIZE = (16, 64)
TEST_DIFFICULTIES = ("easy", "medium", "hard")
TEXTZOOM_FIELDS = ("label", "image_hr", "image_lr")  # the keys of one record, read in this order
SPLIT_FILES = ("data.mdb", "lock.mdb")  # all that a folder written by LMDB holds
LMDB_MAGIC = 0xBEEFC0DE


class TextZoomFormatError(ValueError):
    """The folder is not a usable LMDB split: no `num-samples`, truncated file, missing records."""


class TextZoomRecordError(ValueError):
    """One record of a split is missing or cannot be decoded; names the key and the path."""

    def __init__(self, path: Path, key: str, reason: str) -> None:
        super().__init__(f"{path}: record {key} {reason}")
        self.path = path
        self.key = key
        self.reason = f"record {key} {reason}"  # the message without the path, for `skipped`


def record_key(field: str, index: int) -> str:
    """The LMDB key of a 1-based record: `label-000000001`, `image_hr-000000001`, ..."""
    return f"{field}-{index:09d}"


def _lmdb_error(path: Path, error: lmdb.Error) -> TextZoomFormatError:
    """An lmdb failure as a format error naming the split and the cause."""
    return TextZoomFormatError(
        f"{path}: LMDB cannot read the split ({type(error).__name__}: {error}); "
        "the file is damaged or not an LMDB split"
    )


def _header_layout() -> tuple[int, int]:
    """Byte offsets, in `data.mdb`, of LMDB's magic number and of its page size.

    The first page starts with a page header (page number, then 8 bytes); the meta record that
    follows holds the magic, the version, an address and the map size, then the free-page
    database, whose first 4 bytes are the page size.
    """
    pointer = struct.calcsize("P")
    magic = pointer + 8
    return magic, magic + 8 + 2 * pointer


def _check_data_file(path: Path) -> None:
    """Refuse a `data.mdb` without an LMDB header or shorter than its two header pages.

    Read with plain file reads, before lmdb maps the file, so that a short file cannot fault.
    """
    data_file = path / "data.mdb"
    size = data_file.stat().st_size
    magic_offset, page_size_offset = _header_layout()
    with open(data_file, "rb") as file:
        header = file.read(page_size_offset + 4)
    if len(header) < page_size_offset + 4:
        raise TextZoomFormatError(
            f"{path}: data.mdb is {size} bytes, too short to hold an LMDB header "
            "(an incomplete copy or download?)"
        )
    (magic,) = struct.unpack_from("=I", header, magic_offset)
    (page_size,) = struct.unpack_from("=I", header, page_size_offset)
    if magic != LMDB_MAGIC or page_size < 512 or page_size & (page_size - 1):
        raise TextZoomFormatError(
            f"{path}: data.mdb has no LMDB header (garbage or zeros where the header belongs); "
            "the file is damaged or not an LMDB file"
        )
    if size < 2 * page_size:
        raise TextZoomFormatError(
            f"{path}: data.mdb is {size} bytes, shorter than LMDB's two {page_size}-byte header "
            "pages: the file is truncated (an incomplete copy or download?)"
        )


def _check_file_size(path: Path, env: lmdb.Environment) -> None:
    """Refuse a `data.mdb` shorter than the pages its header says it uses (truncated)."""
    size = (path / "data.mdb").stat().st_size
    pages = env.info()["last_pgno"] + 1
    page_size = env.stat()["psize"]
    if size < pages * page_size:
        raise TextZoomFormatError(
            f"{path}: data.mdb is {size} bytes but its LMDB header says {pages} pages of "
            f"{page_size} bytes ({pages * page_size} bytes): the file is truncated "
            "(an incomplete copy or download?)"
        )


_ENVIRONMENTS: dict[Path, tuple[int, tuple[int, ...], lmdb.Environment]] = {}


_VERIFIED: dict[tuple[Path, tuple[str, ...]], tuple[tuple[int, ...], SplitCheck]] = {}


def _file_identity(path: Path) -> tuple[int, ...]:
    """Device, inode, size and modification time of `data.mdb`: changes when it is replaced."""
    status = (path / "data.mdb").stat()
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def _open_readonly(path: Path) -> lmdb.Environment:
    """The process's one read-only, lock-free handle on a split (lmdb allows one per process).

    The file is checked before it is mapped and again whenever it changes on disk. A handle
    inherited through fork (DataLoader workers) is closed and reopened in the child.
    """
    path = path.resolve()
    identity = _file_identity(path)
    pid, known, env = _ENVIRONMENTS.get(path, (None, None, None))
    if env is not None and pid == os.getpid() and known == identity:
        return env
    if env is not None:
        _ENVIRONMENTS.pop(path)
        env.close()
    _check_data_file(path)
    try:
        env = lmdb.open(
            str(path), readonly=True, lock=False, readahead=False, meminit=False, max_readers=126
        )
    except lmdb.Error as error:
        raise _lmdb_error(path, error) from None
    try:
        _check_file_size(path, env)
    except BaseException:
        env.close()
        raise
    _ENVIRONMENTS[path] = (os.getpid(), identity, env)
    return env


def _forget_environment(path: Path) -> None:
    """Close this process's handle on a split that is about to be replaced."""
    pid, _, env = _ENVIRONMENTS.pop(path.resolve(), (None, None, None))
    if env is not None and pid == os.getpid():
        env.close()


@contextmanager
def _reading(path: Path) -> Iterator[lmdb.Transaction]:
    """A read transaction on the split; lmdb failures become errors naming the split."""
    try:
        with _open_readonly(path).begin() as txn:
            yield txn
    except lmdb.Error as error:
        raise _lmdb_error(path, error) from None


def image_tensor(image: Image.Image) -> torch.Tensor:
    """HxWxC uint8 image -> CxHxW float tensor in [0, 1]."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def tsrn_mask(image: Image.Image) -> torch.Tensor:
    """TSRN's mask channel: grayscale pixels at or below the image mean are 1, brighter are 0."""
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    return torch.from_numpy((gray <= gray.mean()).astype(np.float32))[None]


def _read_num_samples(path: Path, txn: lmdb.Transaction) -> int:
    """The split's `num-samples`, checked to be a non-negative integer."""
    raw = txn.get(b"num-samples")
    if raw is None:
        raise TextZoomFormatError(f"{path}: no 'num-samples' key, not a TextZoom split")
    try:
        count = int(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise TextZoomFormatError(
            f"{path}: 'num-samples' holds {raw[:20]!r}, not an integer"
        ) from None
    if count < 0:
        raise TextZoomFormatError(f"{path}: 'num-samples' is negative ({count})")
    return count


def _decode_label(path: Path, key: str, raw: bytes | None) -> str:
    """A stored label as text; a missing or non-UTF-8 label raises naming the key."""
    if raw is None:
        raise TextZoomRecordError(path, key, "is missing")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TextZoomRecordError(path, key, f"is not UTF-8 text ({error})") from None


def _decode_image(path: Path, key: str, raw: bytes | None) -> Image.Image:
    """A stored image decoded to RGB; a missing or undecodable image raises naming the key."""
    if raw is None:
        raise TextZoomRecordError(path, key, "is missing")
    try:
        with Image.open(io.BytesIO(raw)) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise TextZoomRecordError(
            path, key, f"is not a readable image ({type(error).__name__}: {error})"
        ) from None


def _verify_record(path: Path, key_index: int, fields: tuple[str, ...]) -> None:
    """Decode every field of one record; raise TextZoomRecordError naming the first bad key."""
    with _reading(path) as txn:
        for field in fields:
            key = record_key(field, key_index)
            decode = _decode_label if field == "label" else _decode_image
            decode(path, key, txn.get(key.encode()))


def _record_is_complete(txn: lmdb.Transaction, key_index: int, fields: tuple[str, ...]) -> bool:
    """Whether every field of the record is stored (reading the values touches their pages)."""
    return all(txn.get(record_key(field, key_index).encode()) is not None for field in fields)


def _missing_records(
    txn: lmdb.Transaction, entries: int, count: int, fields: tuple[str, ...]
) -> dict[int, str]:
    """{index: first missing key} of records 1..count that lack a field.

    Fast when the split is whole: LMDB's key count `entries` (one per field and record, plus
    `num-samples`) and the first and last records are checked; the keys are listed only when
    those show a gap.
    """
    expected = len(fields) * count + 1
    ends = {1, count} if count else set()
    ends_complete = all([_record_is_complete(txn, index, fields) for index in ends])
    if ends_complete and entries >= expected:
        return {}
    present = {field.encode(): np.zeros(count + 1, dtype=bool) for field in fields}
    for key in txn.cursor().iternext(values=False):
        field, _, digits = bytes(key).rpartition(b"-")
        marks = present.get(field)
        index = int(digits) if digits.isdigit() else 0
        # `label-1` is not `label-000000001`: only the exact key counts
        if (
            marks is not None
            and 1 <= index <= count
            and key == record_key(field.decode(), index).encode()
        ):
            marks[index] = True
    complete = np.logical_and.reduce(list(present.values()))
    missing = {}
    for index in np.flatnonzero(~complete[1:]) + 1:
        field = next(field for field in fields if not present[field.encode()][index])
        missing[int(index)] = record_key(field, int(index))
    return missing


@dataclass(frozen=True)
class SplitCheck:
    """What checking a split found: its count, how many records are readable, which are not.

    `skipped` holds (1-based key index, reason); `verified` says whether every record was
    decoded (otherwise only the file, the header and the presence of every key were checked).
    """

    path: Path
    num_samples: int
    readable: int
    skipped: list[tuple[int, str]]
    verified: bool

    @property
    def ok(self) -> bool:
        """True when no record is missing or (if verified) undecodable."""
        return not self.skipped


def check_split(
    path: str | os.PathLike,
    verify: bool = False,
    progress: Callable[[int, int], object] | None = None,
    fields: tuple[str, ...] = TEXTZOOM_FIELDS,
) -> SplitCheck:
    """Check a split without loading it: file size against the LMDB header, `num-samples`
    against the keys, first and last records; with `verify`, decode every record too.

    A damaged file raises TextZoomFormatError naming the split and the cause; missing or
    undecodable records are listed in `skipped`. `progress(done, total)` is called after each
    record decoded by `verify` (e.g. a progress bar's update). A verified check is remembered
    until the file changes, so loading a split again does not decode it again.
    """
    path = Path(path)
    if not (path / "data.mdb").is_file():
        raise FileNotFoundError(f"{path}: no TextZoom split here (no data.mdb)")
    memo, identity = (path.resolve(), fields), _file_identity(path)
    known_identity, known = _VERIFIED.get(memo, (None, None))
    if verify and known is not None and known_identity == identity:
        return known
    with _reading(path) as txn:
        count = _read_num_samples(path, txn)
        entries = _open_readonly(path).stat()["entries"]
        missing = _missing_records(txn, entries, count, fields)
    skipped = [(index, f"record {key} is missing") for index, key in missing.items()]
    indices = [index for index in range(1, count + 1) if index not in missing]
    if not verify:
        return SplitCheck(path, count, len(indices), skipped, verify)
    indices, undecodable = _decodable_records(path, indices, fields, progress)
    check = SplitCheck(path, count, len(indices), sorted(skipped + undecodable), verify)
    _VERIFIED[memo] = (identity, check)
    return check


def _decodable_records(
    path: Path,
    indices: list[int],
    fields: tuple[str, ...],
    progress: Callable[[int, int], object] | None = None,
) -> tuple[list[int], list[tuple[int, str]]]:
    """(indices whose records decode, [(index, reason) of those that do not])."""
    good, bad = [], []
    for done, key_index in enumerate(indices, start=1):
        try:
            _verify_record(path, key_index, fields)
        except TextZoomRecordError as error:
            bad.append((key_index, error.reason))
        else:
            good.append(key_index)
        if progress is not None:
            progress(done, len(indices))
    return good, bad


class TextZoomDataset(Dataset):
    """One TextZoom LMDB split. `ds[i]` is `(lr, hr, label)` for the record with key i + 1.

    `lr` is 3x16x64 and `hr` 3x32x128 (4 channels with `mask=True`), floats in [0, 1];
    `label` is the raw stored string. Opening checks the file and that every record's keys
    are there. With `skip_corrupt=True` the split is scanned once and missing or unreadable
    records are left out and listed in `skipped`; otherwise they raise. `fields` names the
    keys of one record (scene-text LMDBs reuse this reader with `("label", "image")`).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        mask: bool = False,
        skip_corrupt: bool = False,
        hr_size: tuple[int, int] = HR_SIZE,
        lr_size: tuple[int, int] = LR_SIZE,
        fields: tuple[str, ...] = TEXTZOOM_FIELDS,
    ) -> None:
        self.path = Path(path)
        self.mask = mask
        self.hr_size = hr_size
        self.lr_size = lr_size
        check = check_split(self.path, verify=skip_corrupt, fields=fields)
        if check.skipped and not skip_corrupt:
            raise TextZoomFormatError(
                f"{self.path}: 'num-samples' is {check.num_samples} but "
                f"{len(check.skipped)} of those records are incomplete (first: "
                f"{check.skipped[0][1]}); an interrupted write or copy? "
                "skip_corrupt=True leaves them out"
            )
        self.num_samples = check.num_samples
        self.skipped = check.skipped
        left_out = {key_index for key_index, _ in check.skipped}
        self.indices = [i for i in range(1, self.num_samples + 1) if i not in left_out]
        if self.skipped:
            warnings.warn(
                f"{self.path}: skipped {len(self.skipped)} of {self.num_samples} records "
                f"(first: {self.skipped[0][1]})",
                stacklevel=2,
            )

    def _reading(self) -> AbstractContextManager[lmdb.Transaction]:
        """A read transaction; lmdb failures become TextZoomFormatError naming the split."""
        return _reading(self.path)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range for {len(self)} samples in {self.path}")
        lr_image, hr_image, label = self.read_record(self.indices[i])
        return self._tensor(lr_image), self._tensor(hr_image), label

    def _tensor(self, image: Image.Image) -> torch.Tensor:
        tensor = image_tensor(image)
        return torch.cat([tensor, tsrn_mask(image)]) if self.mask else tensor

    def read_record(self, key_index: int) -> tuple[Image.Image, Image.Image, str]:
        """Decode record `key_index` (1-based) into resized RGB LR and HR images and the label."""
        with self._reading() as txn:
            label = self._read_label(txn, key_index)
            hr = self._read_image(txn, record_key("image_hr", key_index), self.hr_size)
            lr = self._read_image(txn, record_key("image_lr", key_index), self.lr_size)
        return lr, hr, label

    def raw_record(self, key_index: int) -> dict[str, bytes | None]:
        """The stored bytes of record `key_index` (1-based), keyed by field name."""
        with self._reading() as txn:
            fields = ("label", "image_hr", "image_lr")
            return {f: txn.get(record_key(f, key_index).encode()) for f in fields}

    def labels(self) -> list[str]:
        """The raw labels of all samples, read without decoding any image."""
        with self._reading() as txn:
            return [self._read_label(txn, key_index) for key_index in self.indices]

    def keys(self) -> list[str]:
        """Every key stored in the split, in LMDB's (lexicographic) order."""
        with self._reading() as txn:
            return [key.decode("ascii", "replace") for key in txn.cursor().iternext(values=False)]

    def _read_label(self, txn: lmdb.Transaction, key_index: int) -> str:
        key = record_key("label", key_index)
        return _decode_label(self.path, key, txn.get(key.encode()))

    def _read_image(self, txn: lmdb.Transaction, key: str, size: tuple[int, int]) -> Image.Image:
        rgb = _decode_image(self.path, key, txn.get(key.encode()))
        height, width = size
        if rgb.size != (width, height):
            rgb = rgb.resize((width, height), Image.BICUBIC)
        return rgb


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
    *,
    overwrite: bool = False,
) -> int:
    """Write `samples` ((lr, hr, label) each) as a TextZoom split at `path`; return the count.

    The split is built in a temporary folder beside `path` and renamed into place only when
    complete, so an interrupted write never leaves a partial split at `path`. An existing
    split is replaced only with `overwrite=True`; anything else at `path` is never replaced.
    """
    records = (list(_sample_records(i, sample)) for i, sample in enumerate(samples, start=1))
    return write_records_lmdb(path, records, commit_every, overwrite=overwrite)


def write_records_lmdb(
    path: str | os.PathLike,
    records_per_sample: Iterable[list[tuple[bytes, bytes]]],
    commit_every: int = 1000,
    *,
    overwrite: bool = False,
) -> int:
    """Write each sample's (key, value) records and `num-samples` as an LMDB at `path`.

    Built in a temporary folder beside `path` and renamed into place when complete: an
    interrupted write never leaves a partial LMDB at `path`. `path` must be absent, an empty
    folder, or (with `overwrite=True`) an LMDB split. Returns the sample count.
    """
    path = Path(path)
    _check_replaceable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        follow_umask(staging)
        # files created with 0666 minus the umask, as `open` would make them
        env = lmdb.open(str(staging), map_size=64 << 20, subdir=True, mode=0o666)
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
        _check_replaceable(path, overwrite)  # again: the write may have taken hours
        _forget_environment(path)
        _replace_directory(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return count


def _check_replaceable(path: Path, overwrite: bool) -> None:
    """Refuse to replace anything but an LMDB split (and a split only with `overwrite`).

    A writer replaces its target wholesale; a folder with other files, a regular file or a
    dataset root given instead of one split would be lost, so they raise FileExistsError.
    """
    if path.is_symlink():
        raise FileExistsError(f"{path} is a symbolic link, not an LMDB split; not replacing it")
    if not path.exists():
        return
    if not path.is_dir():
        raise FileExistsError(f"{path} is a file, not an LMDB split folder; not replacing it")
    entries = list(path.iterdir())
    others = sorted(
        entry.name
        for entry in entries
        if entry.name not in SPLIT_FILES or entry.is_symlink() or not entry.is_file()
    )
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise FileExistsError(
            f"{path} holds {shown}: not an LMDB split (only data.mdb and lock.mdb), perhaps a "
            "dataset root given instead of one split; not replacing it"
        )
    if (path / "data.mdb").exists() and not overwrite:
        raise FileExistsError(
            f"{path} already holds an LMDB split; pass overwrite=True to replace it"
        )


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


def textzoom_split_folders(root: str | os.PathLike | None = None) -> dict[str, Path]:
    """The five split folders of a TextZoom root (train1, train2, easy, medium, hard), each
    checked to hold a `data.mdb`."""
    root = textzoom_root(root)
    folders = {
        "train1": root / "train1",
        "train2": root / "train2",
        **{name: root / "test" / name for name in TEST_DIFFICULTIES},
    }
    missing = [str(folder) for folder in folders.values() if not (folder / "data.mdb").is_file()]
    if missing:
        raise FileNotFoundError(f"{root} is not a TextZoom root; missing splits: {missing}")
    return folders


def load_textzoom(root: str | os.PathLike | None = None, **options) -> dict[str, Dataset]:
    """The splits of a TextZoom root: `train` (train1 + train2), `easy`, `medium`, `hard`."""
    splits = {
        name: TextZoomDataset(folder, **options)
        for name, folder in textzoom_split_folders(root).items()
    }
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
