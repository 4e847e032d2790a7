"""The paper's SR model: the TBSRN spatial transformer in front of a general SR network (EDSR).

Registered as model "stn-edsr" (the STN in front of EDSR, at EDSR's sizes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from ocrsr_lib.models.edsr import EDSR, EDSR_CONFIGS, EDSRConfig
from ocrsr_lib.models.registry import register_model, unused_tensor_names
from ocrsr_lib.models.stn import STN_CONFIGS, SpatialTransformer, STNConfig
from ocrsr_lib.models.tbsrn import TBSRN


class RectifiedSR(nn.Module):
    """STN then `sr_model`. Like TBSRN's official code, the STN runs in training mode only
    unless `stn_at_eval` is set (the paper says the STN is the first step; chapter 2 measures both).

    Explained in chapter 2.
    """

    def __init__(
        self, sr_model: nn.Module, stn_at_eval: bool = False, stn: STNConfig = STN_CONFIGS["paper"]
    ) -> None:
        super().__init__()
        self.stn = SpatialTransformer(3, config=stn)
        self.sr = sr_model
        self.stn_at_eval = stn_at_eval

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images[:, :3]
        if self.training or self.stn_at_eval:
            x = self.stn(x)
        return self.sr(x)


def set_stn_at_eval(model: nn.Module, enabled: bool) -> nn.Module:
    """Switch whether the STN of a RectifiedSR or TBSRN model runs in eval mode; returns it."""
    if isinstance(model, RectifiedSR):
        model.stn_at_eval = enabled
    elif isinstance(model, TBSRN) and model.stn is not None:
        model.config = replace(model.config, stn_at_eval=enabled)
    else:
        raise ValueError(f"{type(model).__name__} has no spatial transformer to switch")
    return model


def stn_runs_at_evaluation(model: nn.Module) -> bool:
    """Whether a model's STN (if it has one) rectifies in eval mode."""
    if isinstance(model, RectifiedSR):
        return model.stn_at_eval
    if isinstance(model, TBSRN) and model.stn is not None:
        return model.config.stn_at_eval
    return False


def idle_parameter_names(name: str, model: nn.Module) -> set[str]:
    """Parameters of `model` (registered as `name`) that its eval-mode forward never reads: the
    ones the model declares unused, and its STN's when the STN runs in training only. A
    quantization plan leaves them out; sizes count them apart."""
    parameters = {parameter for parameter, _ in model.named_parameters()}
    idle = parameters & set(unused_tensor_names(name, model))
    stn = getattr(model, "stn", None)
    if isinstance(stn, nn.Module) and not stn_runs_at_evaluation(model):
        idle |= {f"stn.{parameter}" for parameter, _ in stn.named_parameters()}
    return idle


@dataclass(frozen=True)
class STNEDSRConfig:
    """The sizes of an STN+EDSR: the EDSR's and the STN's localization network's."""

    edsr: EDSRConfig
    stn: STNConfig


# every EDSR size, each with the STN of that size (the paper's where the STN has none)
STN_EDSR_CONFIGS = {
    size: STNEDSRConfig(edsr, STN_CONFIGS.get(size, STN_CONFIGS["paper"]))
    for size, edsr in EDSR_CONFIGS.items()
}


def build_stn_edsr(config: STNEDSRConfig, stn_at_eval: bool = False) -> RectifiedSR:
    """A fresh EDSR of this size behind a fresh STN, built in that order (which, under a fixed
    seed, decides the initial weights of both)."""
    return RectifiedSR(EDSR(config.edsr), stn_at_eval=stn_at_eval, stn=config.stn)


register_model("stn-edsr", STN_EDSR_CONFIGS, build_stn_edsr)
