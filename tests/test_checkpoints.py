"""Checkpoint files: atomic saving, safe loading, strict state dicts."""

from pathlib import Path

import pytest
import torch
from torch import nn

from ocrsr_lib.checkpoints import (
    CheckpointError,
    load_checkpoint,
    load_state_dict_strict,
    save_checkpoint,
)


def test_round_trip_of_plain_payloads(tmp_path):
    payload = {"model": {"w": torch.arange(3.0)}, "step": 7, "history": [{"psnr": 20.5}]}
    save_checkpoint(tmp_path / "c.pt", payload)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(loaded["model"]["w"], torch.arange(3.0))
    assert loaded["step"] == 7 and loaded["history"] == [{"psnr": 20.5}]
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_failed_save_keeps_the_previous_file(tmp_path):
    save_checkpoint(tmp_path / "c.pt", {"step": 1})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot save")

    with pytest.raises(RuntimeError, match="cannot save"):
        save_checkpoint(tmp_path / "c.pt", {"step": 2, "bad": Unpicklable()})
    assert load_checkpoint(tmp_path / "c.pt") == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_missing_and_truncated_files_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "none.pt")
    save_checkpoint(tmp_path / "c.pt", {"w": torch.rand(100)})
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "c.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "c.pt")


def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"w": Exploit()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="pickled code"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_strict_loading_lists_every_difference():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    state = model.state_dict()
    state.pop("1.bias")
    state["0.weight"] = torch.zeros(4, 2)
    state["2.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as error:
        load_state_dict_strict(model, state, "file.pt")
    message = str(error.value)
    assert "file.pt" in message and "missing (1): 1.bias" in message
    assert "unexpected (1): 2.weight" in message
    assert "0.weight: model (3, 2) vs file (4, 2)" in message
    good = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    load_state_dict_strict(model, good.state_dict(), "good.pt")
    assert torch.equal(model[0].weight, good[0].weight)
