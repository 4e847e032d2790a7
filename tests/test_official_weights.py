"""Official checkpoints load through converters and reproduce the official networks' outputs.

The fixtures in ocrsr_lib/official_references were computed by running the official code (see the
README there); no official code is part of this repository.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from torch import nn

from ocrsr_lib.checkpoints import CheckpointError
from ocrsr_lib.models import OFFICIAL_REFERENCES, load_official, official_kinds
from ocrsr_lib.models.converting import strip_prefix
from ocrsr_lib.models.guide import to_recognizer_input
from ocrsr_lib.models.stn import SpatialTransformer

FIXTURES = OFFICIAL_REFERENCES


def fixture(name: str) -> dict:
    return torch.load(FIXTURES / f"{name}.pt", weights_only=True)


def relative_error(ours: torch.Tensor, official: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest official value."""
    return ((ours - official).abs().max() / official.abs().max()).item()


def relative_norm_error(ours: torch.Tensor, official: torch.Tensor) -> float:
    """Norm of the difference relative to the norm of the official tensor."""
    return ((ours - official).norm() / official.norm()).item()


Outputs = Callable[[nn.Module, dict], dict[str, torch.Tensor]]


def recognizer_outputs(image: str) -> Outputs:
    """The guide's logits and attention on the reference's `image` ("hr" or "sr") crops."""

    def outputs(model: nn.Module, reference: dict) -> dict[str, torch.Tensor]:
        read = model(
            to_recognizer_input(reference[image]), reference["length"], reference["decoder_input"]
        )
        ours = {f"{image}_logits": read.logits, f"{image}_attention": read.attention}
        if image == "hr":  # the official test=True output
            ours["hr_word_logits"] = read.word_logits
        return ours

    return outputs


@dataclass(frozen=True)
class OfficialCase:
    """An official file, the official network's outputs on known inputs, and how close ours are.

    `outputs` runs our converted model on the reference inputs and names each result by the
    reference key of the official output; `config` holds the sizes the converter must infer.
    """

    kind: str
    weights: str
    reference: str
    outputs: Outputs
    tolerance: float
    options: dict = field(default_factory=dict)
    error: Callable[[torch.Tensor, torch.Tensor], float] = relative_error
    config: dict = field(default_factory=dict)


def cdistnet_case(outputs, tolerance: float) -> OfficialCase:
    """A case of the reduced-width official CDistNet (4 heads), compared by relative norm."""
    return OfficialCase(
        "cdistnet",
        "cdistnet_small",
        "cdistnet_small_io",
        outputs,
        tolerance,
        options={"heads": 4},
        error=relative_norm_error,
    )


OFFICIAL_CASES = {
    "edsr-pytorch res 0.1": OfficialCase(
        "edsr",
        "edsr_x2_small",
        "edsr_x2_small_io",
        lambda model, ref: {"output": model(ref["input"] / 255) * 255},  # the library: [0, 1]
        1e-4,
        options={"residual_scale": 0.1},
        config={"residual_blocks": 2, "features": 16},
    ),
    "edsr-pytorch res 1": OfficialCase(
        "edsr",
        "edsr_x2_small_res1",
        "edsr_x2_small_res1_io",
        lambda model, ref: {"output": model(ref["input"] / 255) * 255},
        1e-4,
        options={"residual_scale": None},
        config={"residual_blocks": 2, "features": 16},
    ),
    "car x2": OfficialCase(
        "car-edsr",
        "car_edsr_small_x2",
        "car_edsr_small_x2_io",
        lambda model, ref: {"output": model(ref["input"])},
        1e-4,
        config={"residual_scale": 0.1, "rgb_range": 1.0},
    ),
    "tbsrn eval": OfficialCase(
        "tbsrn",
        "tbsrn_small",
        "tbsrn_small_io",
        lambda model, ref: {"output": model(ref["input"])},
        1e-4,
        config={"residual_blocks": 1, "channels": 64},
    ),
    "guide on hr": OfficialCase(
        "tbsrn-recognizer",
        "tbsrn_recognizer_small",
        "tbsrn_recognizer_small_io",
        recognizer_outputs("hr"),
        1e-4,
    ),
    "guide on sr": OfficialCase(
        "tbsrn-recognizer",
        "tbsrn_recognizer_small",
        "tbsrn_recognizer_small_io",
        recognizer_outputs("sr"),
        1e-4,
    ),
    # end to end within the official code's own float32 spread (its notes: the TPS grid's
    # rounding, amplified at sharp edges, moves logits by ~2e-3 between batch sizes and by
    # ~1.6e-4 between CPU instruction sets); the stages after it below 1e-5
    "cdistnet heads 4": cdistnet_case(
        lambda model, ref: {"logits": model(ref["images"], ref["tgt"])}, 1e-3
    ),
    "cdistnet rectification": cdistnet_case(
        lambda model, ref: {"tps_out": model.visual_branch.transform(ref["images"])}, 1e-3
    ),
    "cdistnet after the rectification": cdistnet_case(
        lambda model, ref: {
            "logits": model.forward_rectified(ref["intermediates"]["tps_out"], ref["tgt"])
        },
        1e-5,
    ),
}


@pytest.mark.parametrize("case", OFFICIAL_CASES.values(), ids=OFFICIAL_CASES.keys())
def test_official_checkpoint_reproduces_official_outputs(case: OfficialCase):
    reference = fixture(case.reference)
    model = load_official(case.kind, FIXTURES / f"{case.weights}.pt", **case.options)
    assert not model.training
    assert {name: getattr(model.config, name) for name in case.config} == case.config
    with torch.no_grad():
        ours = case.outputs(model, reference)
    for key, output in ours.items():
        expected = reference[key] if key in reference else reference["intermediates"][key]
        assert output.shape == expected.shape, key
        assert case.error(output, expected) < case.tolerance, key


def test_every_official_converter_has_a_reference_case():
    assert {case.kind for case in OFFICIAL_CASES.values()} == set(official_kinds())


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
