"""The paper's SR model: the TBSRN spatial transformer in front of a general SR network (EDSR)."""

from __future__ import annotations

import torch
from torch import nn

from ocrsr_lib.models.stn import SpatialTransformer


class RectifiedSR(nn.Module):
    """STN then `sr_model`. Like TBSRN's official code, the STN runs in training mode only
    unless `stn_at_eval` is set (the paper says the STN is the first step; chapter 2 measures both).
    """

    def __init__(self, sr_model: nn.Module, stn_at_eval: bool = False) -> None:
        super().__init__()
        self.stn = SpatialTransformer(3)
        self.sr = sr_model
        self.stn_at_eval = stn_at_eval

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images[:, :3]
        if self.training or self.stn_at_eval:
            x = self.stn(x)
        return self.sr(x)
