"""Official-checkpoint converters refuse bad files with errors naming the file and the cause:
the other EDSR format, NaN or infinite weights, tensors that do not fit; `check_official`
does the same up front, before any run trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ocrsr_lib.checkpoints import CheckpointError
from ocrsr_lib.models import OFFICIAL_REFERENCES, load_official

# an official file of every kind, as `trained` loads it (no converter options)
REFERENCE_FILES = {
    "edsr": "edsr_x2_small",
    "car-edsr": "car_edsr_small_x2",
    "tbsrn": "tbsrn_small",
    "tbsrn-recognizer": "tbsrn_recognizer_small",
    "cdistnet": "cdistnet_small",
}


def reference(name: str) -> dict:
    return torch.load(OFFICIAL_REFERENCES / f"{name}.pt", weights_only=True)


def saved(folder: Path, name: str, payload: object) -> Path:
    path = folder / f"{name}.pt"
    torch.save(payload, path)
    return path


def with_value(state_dict: dict, key: str, value: float) -> dict:
    """A copy of `state_dict` whose tensor `key` holds `value` at its first element."""
    tensor = state_dict[key].clone()
    tensor.view(-1)[0] = value
    return {**state_dict, key: tensor}


def car_layout(prefixed: bool) -> dict:
    """CAR's EDSR tensors (`usn.pth`), with or without DataParallel's `module.`."""
    state_dict = reference("car_edsr_small_x2")
    return state_dict if prefixed else {k.removeprefix("module."): v for k, v in state_dict.items()}


def edsr_pytorch_layout(prefixed: bool) -> dict:
    """EDSR-PyTorch tensors, as saved or wrapped by DataParallel."""
    state_dict = reference("edsr_x2_small")
    return {("module." if prefixed else "") + k: v for k, v in state_dict.items()}


@pytest.mark.parametrize("prefixed", [True, False], ids=["module.", "bare"])
@pytest.mark.parametrize(
    ("layout", "given_as", "hint"),
    [(car_layout, "edsr", "'car-edsr'"), (edsr_pytorch_layout, "car-edsr", "kind 'edsr'")],
    ids=["car-as-edsr-pytorch", "edsr-pytorch-as-car"],
)
def test_a_file_of_the_other_edsr_family_is_refused_naming_its_kind(
    tmp_path, prefixed, layout, given_as, hint
):
    path = saved(tmp_path, "other-family", layout(prefixed))
    with pytest.raises(CheckpointError) as error:
        load_official(given_as, path)
    message = str(error.value)
    assert str(path) in message and "mean shift" in message and hint in message


def test_an_edsr_pytorch_file_saved_from_data_parallel_still_loads(tmp_path):
    path = saved(tmp_path, "EDSR_x2", edsr_pytorch_layout(prefixed=True))
    assert load_official("edsr", path).config.rgb_range == 255.0


def tbsrn_with_nan(folder: Path) -> Path:
    checkpoint = reference("tbsrn_small")
    generator = with_value(checkpoint["state_dict_G"], "block1.0.weight", float("nan"))
    return saved(folder, "tbsrn_nan", {**checkpoint, "state_dict_G": generator})


NON_FINITE = {
    "nan edsr": ("edsr", "edsr_x2_small", "head.0.weight", float("nan"), {}),
    "inf car": ("car-edsr", "car_edsr_small_x2", "module.tail.1.bias", float("inf"), {}),
    "-inf guide": (
        "tbsrn-recognizer",
        "tbsrn_recognizer_small",
        "module.decoder.pff.w_1.weight",
        float("-inf"),
        {},
    ),
    "nan cdistnet": ("cdistnet", "cdistnet_small", "tgt_word_prj.weight", float("nan"), {}),
}


@pytest.mark.parametrize("case", NON_FINITE.values(), ids=NON_FINITE.keys())
def test_nan_and_infinite_weights_are_refused_naming_file_and_tensor(tmp_path, case):
    kind, name, key, value, options = case
    path = saved(tmp_path, "poisoned", with_value(reference(name), key, value))
    with pytest.raises(CheckpointError) as error:
        load_official(kind, path, **options)
    message = str(error.value)
    assert str(path) in message and "NaN or infinite" in message
    assert key.removeprefix("module.") in message


def test_a_nan_in_a_tbsrn_training_checkpoint_is_refused(tmp_path):
    path = tbsrn_with_nan(tmp_path)
    with pytest.raises(CheckpointError, match=r"NaN or infinite.*block1\.0\.weight") as error:
        load_official("tbsrn", path)
    assert str(path) in str(error.value)


def test_a_file_whose_shapes_do_not_fit_is_refused_naming_the_tensor(tmp_path):
    state_dict = {**reference("edsr_x2_small"), "body.0.body.0.weight": torch.zeros(16, 8, 3, 3)}
    path = saved(tmp_path, "misshaped", state_dict)
    with pytest.raises(CheckpointError, match=r"body\.0\.body\.0\.weight") as error:
        load_official("edsr", path)
    assert str(path) in str(error.value)


SIZE_TENSORS = {  # a tensor each converter reads a size from, replaced by one without that axis
    "edsr": ("edsr", "edsr_x2_small", "head.0.weight", torch.tensor(1.0), {}),
    "tbsrn": ("tbsrn", "tbsrn_small", "block1.0.weight", torch.tensor(1.0), {}),
    "guide": (
        "tbsrn-recognizer",
        "tbsrn_recognizer_small",
        "module.encoder.cnn.conv1.weight",
        torch.tensor(1.0),
        {},
    ),
    "cdistnet": ("cdistnet", "cdistnet_small", "tgt_word_prj.weight", torch.zeros(5), {}),
}


@pytest.mark.parametrize("case", SIZE_TENSORS.values(), ids=SIZE_TENSORS.keys())
def test_a_tensor_without_the_axis_a_size_is_read_from_is_refused(tmp_path, case):
    kind, name, key, tensor, options = case
    state_dict = reference(name)
    if kind == "tbsrn":
        state_dict = state_dict["state_dict_G"]
    path = saved(tmp_path, "flat", {**state_dict, key: tensor})
    with pytest.raises(CheckpointError, match="no axis") as error:
        load_official(kind, path, **options)
    assert str(path) in str(error.value) and key.removeprefix("module.") in str(error.value)


def test_a_position_code_stored_in_double_precision_is_accepted(tmp_path):
    state_dict = reference("tbsrn_recognizer_small")
    state_dict["module.pe.pe"] = state_dict["module.pe.pe"].double()
    assert not load_official("tbsrn-recognizer", saved(tmp_path, "double", state_dict)).training


@pytest.mark.parametrize("kind", REFERENCE_FILES)
def test_check_official_accepts_the_official_reference_files(kind):
    from ocrsr_lib.models.registry import check_official

    model = check_official(kind, OFFICIAL_REFERENCES / f"{REFERENCE_FILES[kind]}.pt")
    assert not model.training and sum(p.numel() for p in model.parameters()) > 0


def test_check_official_names_recipe_file_and_cause(tmp_path):
    from ocrsr_lib.models.registry import check_official

    path = saved(tmp_path, "usn", car_layout(prefixed=True))
    with pytest.raises(CheckpointError) as error:
        check_official("edsr", path, recipe="edsr-natural")
    message = str(error.value)
    assert "'edsr-natural'" in message and str(path) in message and "'car-edsr'" in message
    poisoned = saved(tmp_path, "nan", with_value(reference("edsr_x2_small"), "tail.1.bias", 1e999))
    with pytest.raises(CheckpointError, match=r"'edsr-natural'.*NaN or infinite.*tail\.1\.bias"):
        check_official("edsr", poisoned, recipe="edsr-natural")
    with pytest.raises(FileNotFoundError, match=r"'guide'.*no checkpoint file"):
        check_official("tbsrn-recognizer", tmp_path / "missing.pt", recipe="guide")


def test_check_official_refuses_weights_that_do_not_fit_the_model_starting_from_them():
    from ocrsr_lib.models import EDSR, EDSRConfig, create_model
    from ocrsr_lib.models.registry import check_official

    path = OFFICIAL_REFERENCES / "edsr_x2_small.pt"
    demo = create_model("edsr", "demo")  # 6 blocks of 32 features; the file has 2 of 16
    before = {k: v.clone() for k, v in demo.state_dict().items()}
    with pytest.raises(
        CheckpointError, match=r"(?s)'edsr-natural'.*does not fit.*shape mismatch"
    ) as error:
        check_official("edsr", path, recipe="edsr-natural", fits=demo)
    assert str(path) in str(error.value)
    assert all(torch.equal(before[k], v) for k, v in demo.state_dict().items())
    same_size = EDSR(EDSRConfig(residual_blocks=2, features=16, residual_scale=1.0))
    check_official("edsr", path, recipe="edsr-natural", fits=same_size)
