"""Fault injection at the command line: unreadable records, impossible options, and file system
faults (a cache that is a file, read-only, or full) each end in one clear line, exit status 2,
never a traceback (unless --debug asks for one) and never after hours of work."""

import contextlib
import subprocess
from pathlib import Path

import lmdb
import pytest

from ocrsr_lib.cli import build_parser, main

COMMANDS_THAT_READ_DATA = {
    "data": [],
    "train-sr": ["edsr"],
    "train-cdistnet": ["pretrain"],
    "quantize": [],
    "evaluate": [],
    "report": [],
    "check-precision": [],
}


def corrupt_record(split: Path, key: str) -> None:
    """Overwrite one stored image with bytes that are not an image."""
    env = lmdb.open(str(split), subdir=True)
    with env.begin(write=True) as transaction:
        assert transaction.get(key.encode()) is not None
        transaction.put(key.encode(), b"not an image at all")
    env.close()


@contextlib.contextmanager
def mounted_tmpfs(folder: Path, options: str):
    """A tiny tmpfs at `folder` (skips the test where the platform does not allow mounting)."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("command", sorted(COMMANDS_THAT_READ_DATA))
def test_every_command_that_reads_data_can_skip_corrupt_records(command):
    arguments = [command, *COMMANDS_THAT_READ_DATA[command], "--skip-corrupt"]
    assert build_parser().parse_args(arguments).skip_corrupt is True


def test_a_corrupt_record_stops_training_naming_split_and_key(tiny_recipes, capsys):
    corrupt_record(tiny_recipes / "train1", "image_hr-000000007")
    arguments = ["train-sr", "edsr", "--textzoom", str(tiny_recipes), "--device", "cpu"]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert "train1" in error and "image_hr-000000007" in error and "not a readable image" in error


def test_skip_corrupt_trains_around_a_bad_record_and_lists_it(tiny_recipes, capsys):
    corrupt_record(tiny_recipes / "train1", "image_lr-000000007")
    arguments = ["train-sr", "edsr", "--textzoom", str(tiny_recipes), "--device", "cpu"]
    assert main([*arguments, "--skip-corrupt"]) == 0
    printed = capsys.readouterr().out
    assert "left out 1 unreadable records" in printed
    assert "train1 record 7" in printed and "image_lr-000000007" in printed
    checkpoint = next(line for line in printed.splitlines() if line.startswith("checkpoint: "))
    log = Path(checkpoint.removeprefix("checkpoint: ")).with_suffix(".skipped.txt")
    assert "train1 record 7" in log.read_text()


def test_skipping_changes_the_run_key(tiny_recipes):
    """A run trained without the bad records is not the run trained on every record."""
    from ocrsr_lib.config import setup
    from ocrsr_lib.runs import run_key

    strict = setup("demo", device="cpu", textzoom=tiny_recipes, verbose=False)
    skipping = setup("demo", device="cpu", textzoom=tiny_recipes, verbose=False, skip_corrupt=True)
    assert run_key(strict, "edsr") != run_key(skipping, "edsr")


@pytest.mark.parametrize(
    "arguments",
    [
        ["quantize", "--bits", "9"],
        ["evaluate", "--bits", "1"],
        ["evaluate", "--beam", "0"],
        ["evaluate", "--words", "-3"],
        ["train-sr", "edsr", "--batch-size", "0"],
        ["check-precision", "--batch", "0"],
    ],
)
def test_impossible_options_are_refused_before_any_work(tiny_recipes, arguments, capsys):
    with pytest.raises(SystemExit) as exit_status:
        main([*arguments, "--textzoom", str(tiny_recipes), "--device", "cpu"])
    assert exit_status.value.code == 2
    assert "error: argument --" in capsys.readouterr().err
    assert not (tiny_recipes.parent / "cache").exists()  # nothing trained, nothing cached


def test_quantize_without_a_target_is_refused_before_any_work(tiny_recipes, capsys):
    arguments = ["quantize", "--target", "none", "--textzoom", str(tiny_recipes), "--device", "cpu"]
    assert main(arguments) == 2
    assert "--target sr, ocr or sr+ocr" in capsys.readouterr().err
    assert not (tiny_recipes.parent / "cache").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"target": "sr", "bits": 9}, "bits must be an integer from 2 to 8"),
        ({"target": "sr", "bits": 1}, "bits must be an integer from 2 to 8"),
        ({"target": "sr", "method": "magic"}, "unknown quantization method"),
        ({"target": "sr", "granularity": "row"}, "unknown granularity"),
        ({"target": "sr", "edges": "16bit"}, "unknown edge policy"),
        ({"target": "sr", "sr_groups": ("edsr-body", "edsr-bdy")}, "['edsr-bdy']"),
        ({"target": "ocr", "ocr_groups": ("everything",)}, "['everything']"),
    ],
)
def test_a_quantization_setting_is_checked_when_made(options, message):
    from ocrsr_lib.pipelines import QuantSetting

    with pytest.raises(ValueError) as error:
        QuantSetting(**options)
    assert message in str(error.value)


def test_a_cache_that_is_a_file_is_one_line_naming_it(tiny_recipes, tmp_path, monkeypatch, capsys):
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("a file where the cache should be")
    monkeypatch.setenv("OCRSR_CACHE", str(not_a_folder))
    arguments = ["train-sr", "edsr", "--textzoom", str(tiny_recipes), "--device", "cpu"]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error
    assert str(not_a_folder) in error and "Not a directory" in error
    assert not_a_folder.read_text() == "a file where the cache should be"


def test_a_read_only_cache_is_one_line_naming_it(tiny_recipes, tmp_path, monkeypatch, capsys):
    with mounted_tmpfs(tmp_path / "read-only", "ro,size=1m") as cache:
        monkeypatch.setenv("OCRSR_CACHE", str(cache))
        arguments = ["train-sr", "edsr", "--textzoom", str(tiny_recipes), "--device", "cpu"]
        assert main(arguments) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and str(cache) in error and "Read-only file system" in error


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing_behind(
    tiny_recipes, tmp_path, monkeypatch, capsys
):
    with mounted_tmpfs(tmp_path / "full", "size=64k") as cache:
        monkeypatch.setenv("OCRSR_CACHE", str(cache))
        arguments = ["train-sr", "edsr", "--textzoom", str(tiny_recipes), "--device", "cpu"]
        assert main(arguments) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "No space left on device" in error
        assert str(cache) in error
        assert not list(cache.rglob("*.partial"))


def test_a_garbage_split_is_one_line_naming_it(tiny_recipes, capsys):
    data_file = tiny_recipes / "test" / "easy" / "data.mdb"
    data_file.write_bytes(b"\x17garbage" * 4096)
    arguments = ["data", "--profile", "paper", "--textzoom", str(tiny_recipes)]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and str(data_file.parent) in error


def test_debug_shows_the_traceback(tiny_recipes, tmp_path, monkeypatch):
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("OCRSR_CACHE", str(not_a_folder))
    arguments = ["train-sr", "edsr", "--textzoom", str(tiny_recipes), "--device", "cpu"]
    with pytest.raises(NotADirectoryError):
        main([*arguments, "--debug"])
    monkeypatch.setenv("OCRSR_DEBUG", "1")
    with pytest.raises(NotADirectoryError):
        main(arguments)


def test_an_official_file_that_cannot_start_its_consumer_is_refused_before_training(
    tiny_recipes, capsys
):
    """`edsr` does not use the official EDSR, yet a file that cannot start `stn-edsr` is refused
    before `edsr` trains, not after."""
    from ocrsr_lib.models import OFFICIAL_REFERENCES

    edsr_file = OFFICIAL_REFERENCES / "edsr_x2_small.pt"  # narrower than the demo's EDSR
    arguments = ["train-sr", "edsr", "--textzoom", str(tiny_recipes), "--device", "cpu"]
    assert main([*arguments, "--official", f"edsr-natural={edsr_file}"]) == 2
    error = capsys.readouterr().err
    assert str(edsr_file) in error and "cannot start 'stn-edsr'" in error
    assert not list((tiny_recipes.parent / "cache").rglob("*.pt"))


def test_data_lists_unreadable_records_and_fails_without_skip_corrupt(tiny_recipes, capsys):
    corrupt_record(tiny_recipes / "test" / "hard", "image_hr-000000002")
    arguments = ["data", "--profile", "paper", "--textzoom", str(tiny_recipes)]
    assert main(arguments) == 0  # the fast check reads the keys, not every image
    assert main([*arguments, "--verify"]) == 2
    captured = capsys.readouterr()
    assert "hard         3 pairs, 1 unreadable" in captured.out
    assert "record 2: record image_hr-000000002 is not a readable image" in captured.out
    assert "give --skip-corrupt to leave them out" in captured.err
    assert main([*arguments, "--verify", "--skip-corrupt"]) == 0


def test_data_reports_num_samples_beyond_the_records(tiny_recipes, capsys):
    """A count of 100 over 4 records is an error naming the split, not "100 pairs"."""
    env = lmdb.open(str(tiny_recipes / "test" / "easy"), subdir=True)
    with env.begin(write=True) as transaction:
        transaction.put(b"num-samples", b"100")
    env.close()
    arguments = ["data", "--profile", "paper", "--textzoom", str(tiny_recipes)]
    assert main(arguments) == 2
    captured = capsys.readouterr()
    assert "easy         4 pairs, 96 unreadable" in captured.out
    assert "easy record 5: record label-000000005 is missing" in captured.out
    assert "... and 76 more" in captured.out  # 20 lines shown
    assert "96 records cannot be read" in captured.err
    assert main([*arguments, "--skip-corrupt"]) == 0


def test_checking_official_files_converts_each_file_once(tiny_recipes, monkeypatch):
    from ocrsr_lib.checkpoints import CheckpointError
    from ocrsr_lib.config import setup
    from ocrsr_lib.models import OFFICIAL_REFERENCES, registry
    from ocrsr_lib.runs import check_official_runs

    conversions = []
    convert = registry.CONVERTERS["edsr"]
    monkeypatch.setitem(
        registry.CONVERTERS, "edsr", lambda *args: conversions.append(args) or convert(*args)
    )
    edsr_file = OFFICIAL_REFERENCES / "edsr_x2_small.pt"
    official = {"edsr-natural": edsr_file}
    session = setup("demo", textzoom=tiny_recipes, verbose=False, official=official)
    with pytest.raises(CheckpointError, match="cannot start 'stn-edsr'"):
        check_official_runs(session)
    assert conversions == [(edsr_file,)]
