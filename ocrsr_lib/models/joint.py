"""An SR model and CDistNet as one module: what one-stage training trains (the alternative to
the paper's two stages that section 4.1.3 rejects). Registered as model "joint"."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ocrsr_lib.models.cdistnet import CDISTNET_UNUSED, to_cdistnet_input
from ocrsr_lib.models.registry import create_model, register_model


@dataclass(frozen=True)
class JointConfig:
    """Which SR model at which size, and CDistNet's size."""

    sr_model: str = "stn-edsr"
    sr_size: str = "demo"
    ocr_size: str = "demo"


JOINT_CONFIGS = {
    "demo": JointConfig(),
    "paper": JointConfig(sr_size="paper", ocr_size="paper"),
}


class JointSR(nn.Module):
    """`sr` upscales, `ocr` (a CDistNet) reads what it made; the STN, if any, runs at evaluation
    too, as in every trained SR run."""

    def __init__(self, config: JointConfig) -> None:
        super().__init__()
        options = {"stn_at_eval": True} if config.sr_model != "edsr" else {}
        self.sr = create_model(config.sr_model, config.sr_size, **options)
        self.ocr = create_model("cdistnet", config.ocr_size)

    def forward(self, lr: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(SR images, CDistNet's logits reading them with teacher forcing on `targets`)."""
        sr = self.sr(lr)
        return sr, self.ocr(to_cdistnet_input(sr[:, :3]), targets)


register_model("joint", JOINT_CONFIGS, JointSR, CDISTNET_UNUSED)
