"""The one cache: names from pure data, computed once, read back after."""

import pytest

from ocrsr_lib.cache import Cache, short_hash
from ocrsr_lib.checkpoints import CheckpointError


def test_names_hash_the_key_parts_and_create_nothing(tmp_path):
    cache = Cache(tmp_path / "profile")
    first = cache.file("tables", "readings", {"beam": 10, "reader": "abc"})
    assert (
        first
        == tmp_path
        / "profile"
        / "tables"
        / f"readings-{short_hash({'reader': 'abc', 'beam': 10})}.pt"
    )
    assert cache.file("tables", "readings", {"beam": 1, "reader": "abc"}) != first
    assert len(short_hash({"a": 1})) == 12
    assert not (tmp_path / "profile").exists()


def test_get_or_compute_computes_once_then_reads_the_file(tmp_path):
    cache = Cache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"value": 3, "words": ["a", "b"]}

    assert cache.get_or_compute("tables", "thing", {"k": 1}, compute) == {
        "value": 3,
        "words": ["a", "b"],
    }
    assert cache.get_or_compute("tables", "thing", {"k": 1}, compute)["value"] == 3
    assert len(calls) == 1
    cache.get_or_compute("tables", "thing", {"k": 2}, compute)
    assert len(calls) == 2


def test_a_corrupt_cached_file_is_an_error_naming_it(tmp_path):
    cache = Cache(tmp_path)
    path = cache.file("tables", "thing", {})
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="thing"):
        cache.get_or_compute("tables", "thing", {}, dict)
