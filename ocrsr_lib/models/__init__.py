"""Models: every SR model takes RGB images in [0, 1] and returns RGB at twice the size."""

from ocrsr_lib.models.bicubic import Bicubic
from ocrsr_lib.models.edsr import EDSR, EDSR_CONFIGS, EDSRConfig
from ocrsr_lib.models.rectified import RectifiedSR, set_stn_at_eval
from ocrsr_lib.models.size import parameter_count
from ocrsr_lib.models.stn import SpatialTransformer
from ocrsr_lib.models.tbsrn import TBSRN, TBSRN_CONFIGS, TBSRNConfig

__all__ = [
    "EDSR",
    "EDSR_CONFIGS",
    "TBSRN",
    "TBSRN_CONFIGS",
    "Bicubic",
    "EDSRConfig",
    "RectifiedSR",
    "SpatialTransformer",
    "TBSRNConfig",
    "parameter_count",
    "set_stn_at_eval",
]
