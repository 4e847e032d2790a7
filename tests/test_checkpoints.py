"""Checkpoint files: atomic saving, safe loading, strict state dicts."""

import pickle
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


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "c.pt", {"step": 1})
    real_save = torch.save

    def disk_full(payload, file):
        real_save(payload, file)  # most of the file is written, then the write fails
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(tmp_path / "c.pt", {"step": 2, "w": torch.rand(1000)})
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "c.pt") == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_payloads_that_would_not_load_back_are_refused_before_writing(tmp_path):
    import numpy as np

    optimizer = torch.optim.Adam(nn.Linear(2, 2).parameters(), betas=(0.5, 0.999))
    save_checkpoint(tmp_path / "ok.pt", {"optimizer": optimizer.state_dict(), "none": None})
    assert load_checkpoint(tmp_path / "ok.pt")["optimizer"]["param_groups"][0]["betas"] == (
        0.5,
        0.999,
    )
    with pytest.raises(TypeError) as error:
        save_checkpoint(tmp_path / "bad.pt", {"history": [{"psnr": np.float64(20.0)}]})
    assert "payload['history'][0]['psnr'] (numpy.float64)" in str(error.value)
    assert "bad.pt" in str(error.value) and not (tmp_path / "bad.pt").exists()


def test_missing_and_truncated_files_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "none.pt")
    save_checkpoint(tmp_path / "c.pt", {"w": torch.rand(100)})
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "c.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="c.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "c.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="text.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "text.pt")


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"w": Exploit()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="evil.pt: refused.*pickled code"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()
    # plain pickles (the legacy format) too, whatever the protocol
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"w": Exploit()}, protocol=protocol))
        with pytest.raises(CheckpointError, match="evil.pkl"):
            load_checkpoint(tmp_path / "evil.pkl")
        assert not marker.exists()
    function, arguments = Exploit().__reduce__()
    function(*arguments)  # run by hand, the payload does create the marker
    assert marker.exists()


def test_strict_loading_lists_every_difference():
    model = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    before = {key: value.clone() for key, value in model.state_dict().items()}
    state = model.state_dict()
    state["0.bias"] = torch.full((3,), 9.0)  # matches: must not be loaded while others do not
    state.pop("1.bias")
    state["0.weight"] = torch.zeros(4, 2)
    state["2.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as error:
        load_state_dict_strict(model, state, "file.pt")
    message = str(error.value)
    assert "file.pt" in message and "missing (1): 1.bias" in message
    assert "unexpected (1): 2.weight" in message
    assert "0.weight: model (3, 2) vs file (4, 2)" in message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    state = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)).state_dict()
    state["0.bias"] = [0.0, 0.0, 0.0]
    with pytest.raises(CheckpointError, match=r"0.bias: model \(3,\) vs file a list, not a"):
        load_state_dict_strict(model, state, "list.pt")
    good = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    load_state_dict_strict(model, good.state_dict(), "good.pt")
    assert torch.equal(model[0].weight, good[0].weight)
