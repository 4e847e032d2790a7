"""Fault injection on LMDB splits: writers never replace what is not a split, and damaged files
(truncated, garbage, zeros, fewer records than `num-samples`) end in an error naming the split
and the cause, never a signal. Truncated files are read in a subprocess, so that a SIGBUS
regression fails its test instead of killing pytest."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import lmdb
import numpy as np
import pytest
from conftest import random_image, raw_records, write_raw_lmdb
from PIL import Image

from ocrsr_lib.data.scene_text import SceneTextDataset, write_scene_text_lmdb
from ocrsr_lib.data.textzoom import TextZoomDataset, TextZoomFormatError, write_textzoom_lmdb

REPOSITORY = Path(__file__).resolve().parents[1]


def samples(count: int, seed: int = 0, label: str = "w") -> list[tuple[Image.Image, ...]]:
    """Random-noise pairs (noise PNGs barely compress, so records span many LMDB pages)."""
    rng = np.random.default_rng(seed)
    return [
        (random_image(rng, (64, 16)), random_image(rng, (128, 32)), f"{label}{i}")
        for i in range(count)
    ]


def contents(path: Path) -> dict[str, bytes]:
    """Every file under `path` (or the file itself) with its bytes."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {
        str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()
    }


def set_num_samples(path: Path, count: int) -> None:
    """Overwrite a split's `num-samples` with plain lmdb (as a broken writer would leave it)."""
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        txn.put(b"num-samples", str(count).encode())
    env.close()


# --- writers never replace what is not a split ----------------------------------------------


def folder_with_other_files(tmp_path: Path) -> Path:
    target = tmp_path / "photos"
    target.mkdir()
    (target / "holiday.jpg").write_bytes(b"\xff\xd8 a photo")
    (target / "notes.txt").write_text("keep me")
    return target


def regular_file(tmp_path: Path) -> Path:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    return target


def textzoom_root(tmp_path: Path) -> Path:
    target = tmp_path / "textzoom"
    for split in ("train1", "test/easy"):
        write_textzoom_lmdb(target / split, samples(2, label=split))
    return target


def split_with_an_extra_file(tmp_path: Path) -> Path:
    target = tmp_path / "split"
    write_textzoom_lmdb(target, samples(2))
    (target / "README").write_text("where this split came from")
    return target


@pytest.mark.parametrize(
    "make_target",
    [folder_with_other_files, regular_file, textzoom_root, split_with_an_extra_file],
)
@pytest.mark.parametrize("overwrite", [False, True])
def test_writer_refuses_to_replace_what_is_not_a_split(tmp_path, make_target, overwrite):
    target = make_target(tmp_path)
    before = contents(target)
    options = {"overwrite": True} if overwrite else {}
    with pytest.raises(FileExistsError, match="not an LMDB split") as error:
        write_textzoom_lmdb(target, samples(1), **options)
    assert str(target) in str(error.value)
    assert contents(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no staging left


def test_scene_text_writer_refuses_a_dataset_root(tmp_path):
    target = textzoom_root(tmp_path)
    before = contents(target)
    with pytest.raises(FileExistsError, match="not an LMDB split") as error:
        write_scene_text_lmdb(target, [(Image.new("RGB", (100, 32)), "word")])
    assert str(target) in str(error.value) and contents(target) == before


def test_writer_refuses_a_symbolic_link(tmp_path):
    real = tmp_path / "real"
    write_textzoom_lmdb(real, samples(2))
    before = contents(real)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(FileExistsError, match="symbolic link"):
        write_textzoom_lmdb(tmp_path / "link", samples(1), overwrite=True)
    assert (tmp_path / "link").is_symlink() and contents(real) == before


def test_existing_split_is_replaced_only_with_overwrite(tmp_path):
    target = tmp_path / "split"
    write_textzoom_lmdb(target, samples(2, label="old"))
    with pytest.raises(FileExistsError, match="overwrite=True") as error:
        write_textzoom_lmdb(target, samples(3, label="new"))
    assert str(target) in str(error.value)
    assert TextZoomDataset(target).labels() == ["old0", "old1"]
    assert write_textzoom_lmdb(target, samples(3, label="new"), overwrite=True) == 3
    assert TextZoomDataset(target).labels() == ["new0", "new1", "new2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split"]


def test_an_empty_folder_is_filled_without_overwrite(tmp_path):
    (tmp_path / "split").mkdir()
    assert write_textzoom_lmdb(tmp_path / "split", samples(2)) == 2


def test_writer_checks_the_target_again_before_replacing_it(tmp_path):
    """Files that appear at the target during a long write are not replaced either."""
    target = tmp_path / "split"

    def slow_samples():
        yield from samples(2)
        target.mkdir()
        (target / "notes.txt").write_text("written meanwhile")

    with pytest.raises(FileExistsError, match="not an LMDB split"):
        write_textzoom_lmdb(target, slow_samples())
    assert contents(target) == {"notes.txt": b"written meanwhile"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split"]


# --- damaged files: a clear error, never a signal ---------------------------------------------

READ_EVERYTHING = textwrap.dedent(
    """
    import sys
    from ocrsr_lib.data.textzoom import TextZoomDataset, TextZoomFormatError
    path, mode = sys.argv[1], sys.argv[2]
    try:
        if mode == "check":
            from ocrsr_lib.data.textzoom import check_split
            check_split(path, verify=True)
        elif mode == "scene-text":
            from ocrsr_lib.data.scene_text import SceneTextDataset
            dataset = SceneTextDataset(path, skip_corrupt=True)
            [dataset[i] for i in range(len(dataset))]
        else:
            dataset = TextZoomDataset(path, skip_corrupt=mode == "skip")
            [dataset[i] for i in range(len(dataset))]
    except TextZoomFormatError as error:
        print("refused:", error)
        sys.exit(0)
    print("read every record")
    sys.exit(1)
    """
)


def read_in_subprocess(path: Path, mode: str) -> subprocess.CompletedProcess:
    """Open and read the split in a fresh interpreter using this checkout's library."""
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", READ_EVERYTHING, str(path), mode],
        capture_output=True,
        text=True,
        cwd=REPOSITORY,
        env=environment,
        timeout=300,
    )


@pytest.fixture(scope="module")
def truncated_split(tmp_path_factory) -> Path:
    """200 noise records (about 1000 LMDB pages), data.mdb cut to half its size."""
    path = tmp_path_factory.mktemp("truncated") / "split"
    write_textzoom_lmdb(path, samples(200))
    data_file = path / "data.mdb"
    assert data_file.stat().st_size > 200 * 4096
    os.truncate(data_file, data_file.stat().st_size // 2)
    return path


@pytest.mark.parametrize("mode", ["strict", "skip", "check", "scene-text"])
def test_truncated_data_mdb_is_refused_at_open_never_a_signal(truncated_split, mode):
    finished = read_in_subprocess(truncated_split, mode)
    assert finished.returncode == 0, (finished.returncode, finished.stdout, finished.stderr[-2000:])
    assert str(truncated_split) in finished.stdout
    assert "truncated" in finished.stdout and "bytes" in finished.stdout


def real_header(path: Path, size: int) -> bytes:
    return (path / "data.mdb").read_bytes()[:size]


@pytest.mark.parametrize(
    "size, cause",
    [(0, "too short to hold an LMDB header"), (100, "shorter than"), (4096 + 200, "shorter than")],
)
def test_data_mdb_shorter_than_its_header_is_refused_before_lmdb_maps_it(tmp_path, size, cause):
    path = tmp_path / "split"
    write_textzoom_lmdb(path, samples(5))
    (path / "data.mdb").write_bytes(real_header(path, size))
    finished = read_in_subprocess(path, "strict")
    assert finished.returncode == 0, (finished.returncode, finished.stdout, finished.stderr[-2000:])
    assert str(path) in finished.stdout and cause in finished.stdout


@pytest.mark.parametrize("content", ["garbage", "zeros"])
def test_garbage_or_zeros_data_mdb_is_a_format_error(tmp_path, content):
    path = tmp_path / "split"
    write_textzoom_lmdb(path, samples(5))
    size = (path / "data.mdb").stat().st_size
    data = np.random.default_rng(0).bytes(size) if content == "garbage" else bytes(size)
    (path / "data.mdb").write_bytes(data)
    with pytest.raises(TextZoomFormatError, match="no LMDB header") as error:
        TextZoomDataset(path)
    assert str(path) in str(error.value)


def test_zeroed_second_half_is_a_format_error(tmp_path):
    """A preallocated download: the right size, zeros where the data has not arrived yet."""
    path = tmp_path / "split"
    write_textzoom_lmdb(path, samples(200))
    data_file = path / "data.mdb"
    size = data_file.stat().st_size
    with open(data_file, "r+b") as file:
        file.seek(size // 2)
        file.write(bytes(size - size // 2))
    finished = read_in_subprocess(path, "skip")
    assert finished.returncode == 0, (finished.returncode, finished.stdout, finished.stderr[-2000:])
    assert str(path) in finished.stdout and "LMDB cannot read the split" in finished.stdout


# --- fewer records than num-samples ----------------------------------------------------------


@pytest.fixture
def short_split(tmp_path) -> Path:
    """`num-samples` says 100 but only 24 records were written (an interrupted copy)."""
    path = tmp_path / "split"
    write_textzoom_lmdb(path, samples(24))
    set_num_samples(path, 100)
    return path


def test_num_samples_beyond_the_records_is_refused_at_open(short_split):
    with pytest.raises(TextZoomFormatError) as error:
        TextZoomDataset(short_split)
    message = str(error.value)
    assert str(short_split) in message and "'num-samples' is 100" in message
    assert "76 of those records" in message and "label-000000025 is missing" in message


def test_skip_corrupt_leaves_the_missing_records_out_and_lists_them(short_split):
    with pytest.warns(UserWarning, match="skipped 76 of 100"):
        dataset = TextZoomDataset(short_split, skip_corrupt=True)
    assert len(dataset) == 24 and dataset[23][2] == "w23"
    assert [index for index, _ in dataset.skipped] == list(range(25, 101))
    assert dataset.skipped[0][1] == "record label-000000025 is missing"


def test_one_missing_field_in_the_middle_is_found_at_open(tmp_path):
    path = tmp_path / "split"
    write_textzoom_lmdb(path, samples(10))
    env = lmdb.open(str(path))
    with env.begin(write=True) as txn:
        txn.delete(b"image_lr-000000006")
    env.close()
    with pytest.raises(TextZoomFormatError, match="image_lr-000000006 is missing") as error:
        TextZoomDataset(path)
    assert str(path) in str(error.value)


def test_scene_text_lmdb_with_fewer_records_than_counted(tmp_path):
    words = [(Image.new("RGB", (100, 32), "white"), f"word{i}") for i in range(3)]
    write_scene_text_lmdb(tmp_path / "mj", words)
    set_num_samples(tmp_path / "mj", 5)
    with pytest.raises(TextZoomFormatError, match="label-000000004 is missing"):
        SceneTextDataset(tmp_path / "mj")
    with pytest.warns(UserWarning, match="skipped 2 of 5"):
        dataset = SceneTextDataset(tmp_path / "mj", skip_corrupt=True)
    assert len(dataset) == 3 and [index for index, _ in dataset.skipped] == [4, 5]


# --- check_split: the fast check and the full one --------------------------------------------


def test_check_split_fast_path_checks_header_and_keys_without_decoding(tmp_path, short_split):
    from ocrsr_lib.data.textzoom import SplitCheck, check_split

    whole = tmp_path / "whole"
    write_textzoom_lmdb(whole, samples(5))
    assert check_split(whole) == SplitCheck(whole, 5, 5, [], False)
    short = check_split(short_split)
    assert (short.num_samples, short.readable, short.verified, short.ok) == (100, 24, False, False)
    assert short.skipped[0] == (25, "record label-000000025 is missing")


def test_check_split_verify_decodes_every_record_and_reports_progress(tmp_path):
    from ocrsr_lib.data.textzoom import check_split

    records = raw_records(4, seed=1)
    records[b"image_hr-000000003"] = b"not an image"
    path = write_raw_lmdb(tmp_path / "split", records)
    assert check_split(path).ok  # the fast path does not decode images
    seen = []
    checked = check_split(
        path, verify=True, progress=lambda done, total: seen.append((done, total))
    )
    assert checked.verified and (checked.num_samples, checked.readable) == (4, 3)
    assert [index for index, _ in checked.skipped] == [3]
    assert checked.skipped[0][1].startswith("record image_hr-000000003 is not a readable image")
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_a_verified_check_is_remembered_until_the_split_changes(tmp_path):
    from ocrsr_lib.data.textzoom import check_split

    path = tmp_path / "split"
    write_textzoom_lmdb(path, samples(3))
    counted = []
    first = check_split(path, verify=True, progress=lambda done, total: counted.append(done))
    again = check_split(path, verify=True, progress=lambda done, total: counted.append(done))
    assert again == first and counted == [1, 2, 3]  # the second check decoded nothing
    write_textzoom_lmdb(path, samples(4, seed=1), overwrite=True)
    changed = check_split(path, verify=True, progress=lambda done, total: counted.append(done))
    assert changed.num_samples == 4 and counted == [1, 2, 3, 1, 2, 3, 4]


def test_check_split_names_a_folder_without_a_split(tmp_path):
    from ocrsr_lib.data.textzoom import check_split

    with pytest.raises(FileNotFoundError, match="no TextZoom split"):
        check_split(tmp_path / "nowhere")


# --- modes: what the umask says, as for any file -----------------------------------------------


@pytest.mark.parametrize(
    "umask, folder_mode, file_mode", [(0o022, 0o755, 0o644), (0o002, 0o775, 0o664)]
)
def test_split_folder_and_files_follow_the_umask(tmp_path, umask, folder_mode, file_mode):
    previous = os.umask(umask)
    try:
        write_textzoom_lmdb(tmp_path / "split", samples(2))
    finally:
        os.umask(previous)
    assert (tmp_path / "split").stat().st_mode & 0o777 == folder_mode
    for name in ("data.mdb", "lock.mdb"):
        assert (tmp_path / "split" / name).stat().st_mode & 0o777 == file_mode, name
