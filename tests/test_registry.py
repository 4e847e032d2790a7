"""The model registry: every model is built by name and size, exactly as its class builds it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from ocrsr_lib.models import (
    CDISTNET_CONFIGS,
    EDSR,
    EDSR_CONFIGS,
    RECOGNIZER_CONFIGS,
    TBSRN,
    TBSRN_CONFIGS,
    CDistNet,
    JointSR,
    RectifiedSR,
    TextRecognizer,
    create_model,
    model_names,
    model_sizes,
    official_kinds,
    register_converter,
    register_model,
)
from ocrsr_lib.models.stn import STN_CONFIGS

# how each model was built before the registry: by calling its class directly
DIRECT_BUILDS = {
    "edsr": EDSR,
    "stn-edsr": lambda config: RectifiedSR(EDSR(config.edsr), stn=config.stn),
    "tbsrn": TBSRN,
    "guide": TextRecognizer,
    "cdistnet": CDistNet,
    "joint": JointSR,
}


def seeded(build) -> nn.Module:
    torch.manual_seed(0)
    return build()


def test_every_model_and_official_kind_is_registered():
    assert model_names() == sorted(DIRECT_BUILDS)
    assert official_kinds() == ["car-edsr", "cdistnet", "edsr", "tbsrn", "tbsrn-recognizer"]


@pytest.mark.parametrize("name", sorted(DIRECT_BUILDS))
def test_create_model_builds_the_same_weights_as_the_class(name):
    config = model_sizes(name)["demo"]
    ours = seeded(lambda: create_model(name, "demo"))
    direct = seeded(lambda: DIRECT_BUILDS[name](config))
    assert type(ours) is type(direct) and ours.training
    expected = direct.state_dict()
    assert list(ours.state_dict()) == list(expected)
    assert all(torch.equal(value, expected[key]) for key, value in ours.state_dict().items())


def test_sizes_are_the_model_files_configurations():
    assert dict(model_sizes("edsr")) == EDSR_CONFIGS
    stn_edsr = {size: (config.edsr, config.stn) for size, config in model_sizes("stn-edsr").items()}
    assert stn_edsr.keys() == EDSR_CONFIGS.keys()  # every EDSR size, baseline included
    assert all(stn_edsr[size] == (EDSR_CONFIGS[size], STN_CONFIGS[size]) for size in STN_CONFIGS)
    assert stn_edsr["baseline"] == (EDSR_CONFIGS["baseline"], STN_CONFIGS["paper"])
    assert dict(model_sizes("tbsrn")) == TBSRN_CONFIGS
    assert dict(model_sizes("guide")) == RECOGNIZER_CONFIGS
    assert dict(model_sizes("cdistnet")) == CDISTNET_CONFIGS
    with pytest.raises(TypeError):
        model_sizes("edsr")["huge"] = EDSR_CONFIGS["paper"]  # read-only


def test_the_stn_at_evaluation_is_an_option_of_both_rectified_models():
    assert create_model("stn-edsr", "demo", stn_at_eval=True).stn_at_eval
    assert not create_model("stn-edsr", "demo").stn_at_eval
    assert create_model("tbsrn", "demo", stn_at_eval=True).config.stn_at_eval
    assert create_model("tbsrn", "demo").config == TBSRN_CONFIGS["demo"]
    with pytest.raises(TypeError, match="stn_at_eval"):
        create_model("edsr", "demo", stn_at_eval=True)


def test_unknown_names_and_sizes_are_errors_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'srgan'; known: \['cdistnet', 'edsr'"):
        create_model("srgan", "demo")
    with pytest.raises(ValueError, match=r"unknown size 'huge' of model 'tbsrn'; known: \['demo'"):
        create_model("tbsrn", "huge")
    with pytest.raises(ValueError, match="unknown model 'srgan'"):
        model_sizes("srgan")


def test_a_name_or_kind_is_registered_once():
    with pytest.raises(ValueError, match="'edsr' is already registered"):
        register_model("edsr", EDSR_CONFIGS, EDSR)
    with pytest.raises(ValueError, match="'cdistnet' is already registered"):
        register_converter("cdistnet", lambda path: CDistNet())


def test_checkpoint_files_are_read_without_importing_the_models():
    code = "import sys, ocrsr_lib.checkpoints; print(sorted(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "ocrsr_lib.models" not in loaded.stdout
