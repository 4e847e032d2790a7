"""Official checkpoints load through converters and reproduce the official networks' outputs.

The fixtures in tests/fixtures/official were computed by running the official code (see the
README there); no official code is part of this repository.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ocrsr_lib.checkpoints import CheckpointError
from ocrsr_lib.models.stn import SpatialTransformer
from ocrsr_lib.official_weights import load_official, strip_prefix

FIXTURES = Path(__file__).parent / "fixtures" / "official"


def fixture(name: str) -> dict:
    return torch.load(FIXTURES / f"{name}.pt", weights_only=True)


def relative_error(ours: torch.Tensor, official: torch.Tensor) -> float:
    return ((ours - official).abs().max() / official.abs().max()).item()


@pytest.mark.parametrize(
    ("name", "residual_scale"), [("edsr_x2_small", 0.1), ("edsr_x2_small_res1", None)]
)
def test_edsr_pytorch_checkpoint_reproduces_official_output(name, residual_scale):
    reference = fixture(f"{name}_io")
    model = load_official("edsr", FIXTURES / f"{name}.pt", residual_scale=residual_scale)
    assert not model.training
    assert model.config.residual_blocks == 2 and model.config.features == 16
    with torch.no_grad():
        output = model(reference["input"] / 255) * 255  # the library works in [0, 1]
    assert relative_error(output, reference["output"]) < 1e-4


def test_car_checkpoint_reproduces_official_output():
    reference = fixture("car_edsr_small_x2_io")
    model = load_official("car-edsr", FIXTURES / "car_edsr_small_x2.pt")
    assert model.config.residual_scale == 0.1 and model.config.rgb_range == 1.0
    with torch.no_grad():
        output = model(reference["input"])
    assert relative_error(output, reference["output"]) < 1e-4


def test_car_x4_checkpoint_is_refused_with_the_offending_keys():
    with pytest.raises(CheckpointError, match=r"tail\.0\.2"):
        load_official("car-edsr", FIXTURES / "car_edsr_small.pt")


def test_tbsrn_checkpoint_reproduces_official_eval_output():
    reference = fixture("tbsrn_small_io")
    model = load_official("tbsrn", FIXTURES / "tbsrn_small.pt")
    assert model.config.residual_blocks == 1 and model.config.channels == 64
    with torch.no_grad():
        output = model(reference["input"])
    assert relative_error(output, reference["output"]) < 1e-4


@pytest.mark.parametrize("align_corners", [True, False])
def test_tps_stn_reproduces_official_rectification(align_corners):
    reference = fixture("tps_stn_small_io")
    stn = SpatialTransformer(3)  # its names are the official `stn_head.*` and `tps.*`
    stn.tps.align_corners = align_corners
    stn.load_state_dict(fixture("tps_stn_small"))
    stn.eval()
    with torch.no_grad():
        points = stn.stn_head(reference["input"])
        grid = stn.tps.sampling_grid(reference["ctrl_points"])
        output = stn(reference["input"])
    assert relative_error(points, reference["ctrl_points"]) < 1e-4
    official_grid = 2 * reference["source_coordinate"].clamp(0, 1) - 1
    assert relative_error(grid.flatten(1, 2), official_grid) < 1e-4
    expected = reference[
        "output_align_corners_true" if align_corners else "output_align_corners_false"
    ]
    # the TPS solve is ill-conditioned: float32 summation order (thread count) moves sampling
    # points by ~1e-5, which bilinear sampling across a sharp edge turns into ~2e-4 in pixels
    assert relative_error(output, expected) < 1e-3


def test_tps_buffers_we_compute_match_the_official_ones():
    reference = fixture("tps_stn_small_io")
    tps = SpatialTransformer(3).tps
    assert torch.allclose(tps.target_control_points, reference["tps_target_control_points"])
    assert torch.allclose(
        tps.target_coordinate_repr, reference["tps_target_coordinate_repr"], atol=1e-5
    )
    assert relative_error(tps.inverse_kernel, reference["tps_inverse_kernel"]) < 1e-4


def test_strip_prefix_only_touches_prefixed_keys():
    assert list(strip_prefix({"module.a": 1, "b": 2}, "module.")) == ["a", "b"]


def test_unknown_kind_and_missing_file_are_reported(tmp_path):
    with pytest.raises(ValueError, match="unknown official checkpoint kind 'srcnn'"):
        load_official("srcnn", tmp_path / "x.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load_official("edsr", tmp_path / "x.pt")


def test_mismatched_checkpoint_names_missing_unexpected_and_misshaped_keys(tmp_path):
    state_dict = dict(fixture("edsr_x2_small"))
    del state_dict["tail.1.bias"]
    state_dict["body.9.extra"] = torch.zeros(1)
    state_dict["head.0.bias"] = torch.zeros(5)
    torch.save(state_dict, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as error:
        load_official("edsr", tmp_path / "bad.pt")
    message = str(error.value)
    assert "tail.1.bias" in message and "body.9.extra" in message and "head.0.bias" in message
    assert "(16,)" in message or "[16]" in message
    assert str(tmp_path / "bad.pt") in message


def test_a_malicious_pickle_is_not_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"head.0.weight": Exploit()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="pickled code"):
        load_official("edsr", tmp_path / "evil.pt")
    assert not marker.exists()
