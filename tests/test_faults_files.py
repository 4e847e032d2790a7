"""Faulty files: corrupt or malformed packed checkpoints, pickled code, saves killed mid-write,
file modes under a umask."""

import builtins
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ocrsr_lib.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from ocrsr_lib.quant.apply import quantize_model
from ocrsr_lib.quant.packing import load_packed, pack_bits, save_packed, unpack_bits

REPOSITORY = Path(__file__).resolve().parents[1]
LONG_AGO = 1_000_000_000  # 2001: before any running process started


def conv_model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.Conv2d(64, 4, 3)
    ).eval()


def packed_file(tmp_path: Path, bit_allocation: bool = False) -> tuple[Path, dict]:
    """A packed checkpoint of a quantized conv_model and its payload as saved."""
    model = conv_model()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
    plan = {"0.weight": 3, "3.weight": 2}
    quantized = quantize_model(model, plan, "minmax", bit_allocation=bit_allocation)
    path = save_packed(quantized, tmp_path / "packed.pt")
    return path, torch.load(path, weights_only=True)


def refusal(path: Path) -> str:
    """The message with which `load_packed` refuses `path` (fails the test if it loads)."""
    with pytest.raises(ValueError) as error:
        load_packed(conv_model(), path)
    message = str(error.value)
    assert str(path) in message
    return message


# finding 6: packed low-bit files


def test_flipped_bytes_in_a_packed_weight_are_refused(tmp_path):
    path, payload = packed_file(tmp_path)
    data = payload["packed"]["3.weight"]["data"].numpy().tobytes()
    raw = bytearray(path.read_bytes())
    start = raw.find(data) + 100
    assert raw.count(data) == 1
    raw[start : start + 64] = bytes(b ^ 0xFF for b in raw[start : start + 64])
    path.write_bytes(raw)
    message = refusal(path)
    assert "not a readable checkpoint" in message or (
        "3.weight" in message and "checksum" in message
    )


def test_changed_packed_data_scales_and_float_tensors_fail_their_checksum(tmp_path):
    path, saved = packed_file(tmp_path)
    changes = {
        "0.weight": lambda payload: payload["packed"]["0.weight"]["data"][:64].bitwise_not_(),
        "3.weight": lambda payload: payload["packed"]["3.weight"]["scale"].mul_(1.01),
        "1.running_mean": lambda payload: payload["tensors"]["1.running_mean"].add_(0.25),
    }
    for name, change in changes.items():
        payload = torch.load(tmp_path / "packed.pt", weights_only=True)
        change(payload)
        torch.save(payload, tmp_path / "changed.pt")
        message = refusal(tmp_path / "changed.pt")
        assert f"'{name}'" in message and "checksum" in message
    assert load_packed(conv_model(), path)  # the untouched file still loads
    assert len(saved["checksums"]) == len(conv_model().state_dict())


IMPOSSIBLE_ENTRIES = [("bits", value) for value in (0, 1, 9, 3.0, True)] + [
    ("shape", value) for value in ([64, 3, 3, 4], [32, 3, 3, 3], [64, 3, -3, -3], "64x3x3x3")
]


@pytest.mark.parametrize(("field", "value"), IMPOSSIBLE_ENTRIES)
def test_impossible_bit_widths_and_shapes_are_refused(tmp_path, field, value):
    path, payload = packed_file(tmp_path)
    payload["packed"]["0.weight"][field] = value
    torch.save(payload, path)
    message = refusal(path)
    assert "'0.weight'" in message and field in message


@pytest.mark.parametrize("field", ["bits", "shape", "scale", "zero_point", "data", "levels"])
def test_missing_fields_are_refused_naming_file_tensor_and_field(tmp_path, field):
    path, payload = packed_file(tmp_path, bit_allocation=True)
    del payload["packed"]["0.weight"][field]
    torch.save(payload, path)
    message = refusal(path)
    assert "'0.weight'" in message and repr(field) in message


def test_a_packed_file_missing_its_float_tensors_is_refused(tmp_path):
    path, payload = packed_file(tmp_path)
    del payload["tensors"]
    torch.save(payload, path)
    assert "'tensors'" in refusal(path)


def test_allocated_widths_that_do_not_match_the_levels_are_refused(tmp_path):
    path, payload = packed_file(tmp_path, bit_allocation=True)
    payload["packed"]["0.weight"]["row_bits"][0] = 0
    torch.save(payload, path)
    assert "'0.weight'" in refusal(path)


def test_version_1_files_are_refused_with_advice_to_pack_again(tmp_path):
    path, payload = packed_file(tmp_path)
    payload["format"] = "ocrsr-packed-1"
    payload.pop("checksums", None)
    torch.save(payload, path)
    message = refusal(path)
    assert "ocrsr-packed-1" in message and "re-pack" in message


def test_checksums_are_deterministic(tmp_path):
    first = packed_file(tmp_path)[1]["checksums"]
    second = packed_file(tmp_path)[1]["checksums"]
    assert first == second and len(set(first.values())) == len(first)


def test_pack_bits_refuses_values_out_of_range_before_any_cast():
    with pytest.raises(ValueError, match="a value of 300 does not fit in 8 bits"):
        pack_bits(torch.tensor([1, 300]), 8)
    with pytest.raises(ValueError, match="a value of 256 does not fit in 8 bits"):
        pack_bits(torch.tensor([256], dtype=torch.int16), 8)
    with pytest.raises(ValueError, match="-1 is negative"):
        pack_bits(torch.tensor([-1, 3]), 8)
    with pytest.raises(ValueError, match="only integers"):
        pack_bits(torch.tensor([1.5]), 2)
    for bits in (0, 9, 2.0, -1):
        with pytest.raises(ValueError, match="1 to 8 bits"):
            pack_bits(torch.zeros(4, dtype=torch.uint8), bits)
        with pytest.raises(ValueError, match="1 to 8 bits"):
            unpack_bits(torch.zeros(4, dtype=torch.uint8), bits, 4)
    assert torch.equal(
        unpack_bits(pack_bits(torch.tensor([1, 0, 1]), 1), 1, 3),
        torch.tensor([1, 0, 1], dtype=torch.uint8),
    )


# finding 7: pickled code


def payloads(marker: Path) -> dict[str, tuple]:
    """Callables a pickle can be made to run, each with arguments that create `marker`."""
    python = f"open({str(marker)!r}, 'w').close()"
    return {
        "system": (os.system, (f"touch '{marker}'",)),
        "call": (subprocess.call, (["touch", str(marker)],)),
        "Popen": (subprocess.Popen, (["touch", str(marker)],)),
        "exec": (builtins.exec, (python,)),
        "eval": (eval, (python,)),
    }


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("name", ["system", "call", "Popen", "exec", "eval"])
def test_pickled_code_is_refused_as_code_without_advice_to_run_it(tmp_path, name):
    marker = tmp_path / "ran"
    function, arguments = payloads(marker)[name]

    class Exploit:
        def __reduce__(self):
            return function, arguments

    torch.save({"w": Exploit(), "x": torch.zeros(2)}, tmp_path / "evil.pt")
    files = [tmp_path / "evil.pt"]
    for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        files.append(tmp_path / f"evil-{protocol}.pkl")
        files[-1].write_bytes(pickle.dumps({"w": Exploit()}, protocol=protocol))
    for file in files:
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(file)
        message = str(error.value)
        assert str(file) in message and "refused code execution" in message
        assert f".{name}" in message  # the code it would run, e.g. posix.system
        assert "weights_only=False" not in message and "will likely succeed" not in message
        assert "weights_only` set to `False" not in message
        assert not marker.exists()
    result = function(*arguments)  # run by hand, the payload does create the marker
    if isinstance(result, subprocess.Popen):
        result.wait()
    assert marker.exists()


# finding 8: saves killed mid-write

KILLED_SAVE = """
import sys, time
from ocrsr_lib.checkpoints import atomic_write

def write(file):
    file.write(bytes(8 << 20))
    file.flush()
    print("writing", flush=True)
    time.sleep(600)

atomic_write(sys.argv[1], write)
"""


def test_a_partial_left_by_a_killed_save_is_removed_at_the_next_save(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_SAVE, str(tmp_path / "model.pt")],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.kill()
        child.wait()
    [killed] = tmp_path.glob(".model.pt.*.partial")
    assert killed.stat().st_size == 8 << 20 and f".{child.pid}." in killed.name
    old_without_pid = tmp_path / ".old.pt.a1b2c3d4.partial"
    live = tmp_path / f".live.pt.{os.getpid()}.a1b2c3d4.partial"  # a writer still running
    fresh = tmp_path / ".fresh.pt.a1b2c3d4.partial"  # written since this process started
    for file in (old_without_pid, live, fresh):
        file.write_bytes(b"x")
    for file in (killed, old_without_pid, live):
        os.utime(file, (LONG_AGO, LONG_AGO))
    save_checkpoint(tmp_path / "other.pt", {"w": torch.zeros(2)})
    left = sorted(file.name for file in tmp_path.iterdir())
    assert left == sorted([fresh.name, live.name, "other.pt"])


# finding 9: file modes


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_saved_checkpoints_follow_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        save_checkpoint(tmp_path / "c.pt", {"w": torch.zeros(2)})
        path, _ = packed_file(tmp_path)
    finally:
        os.umask(previous)
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == mode
    assert path.stat().st_mode & 0o777 == mode
