"""Models: every SR model takes RGB images in [0, 1] and returns RGB at twice the size.

`TextRecognizer` is the guiding OCR of Scene Text Telescope's text-focus loss; `CDistNet` is the
recognizer of the paper's pipeline.
"""

from ocrsr_lib.models.bicubic import Bicubic
from ocrsr_lib.models.cdistnet import CDISTNET_CONFIGS, CDistNet, CDistNetConfig
from ocrsr_lib.models.edsr import EDSR, EDSR_CONFIGS, EDSRConfig
from ocrsr_lib.models.recognizer import (
    RECOGNIZER_CONFIGS,
    RecognizerConfig,
    TextRecognizer,
    encode_labels,
    to_recognizer_input,
)
from ocrsr_lib.models.rectified import RectifiedSR, set_stn_at_eval
from ocrsr_lib.models.size import parameter_count
from ocrsr_lib.models.stn import SpatialTransformer
from ocrsr_lib.models.tbsrn import TBSRN, TBSRN_CONFIGS, TBSRNConfig

__all__ = [
    "CDISTNET_CONFIGS",
    "CDistNet",
    "CDistNetConfig",
    "EDSR",
    "EDSR_CONFIGS",
    "RECOGNIZER_CONFIGS",
    "TBSRN",
    "TBSRN_CONFIGS",
    "Bicubic",
    "EDSRConfig",
    "RecognizerConfig",
    "RectifiedSR",
    "SpatialTransformer",
    "TBSRNConfig",
    "TextRecognizer",
    "encode_labels",
    "parameter_count",
    "set_stn_at_eval",
    "to_recognizer_input",
]
