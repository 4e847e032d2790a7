"""Models: every SR model takes RGB images in [0, 1] and returns RGB at twice the size.

`TextRecognizer` (`models.guide`) is the guiding OCR of Scene Text Telescope's text-focus loss;
`CDistNet` is the recognizer of the paper's pipeline. Importing this package imports every
model file, and each registers its sizes, builder and official converters in `models.registry`:
`create_model(name, size)` builds one, `load_official(kind, path)` converts an official file.
"""

from ocrsr_lib.models.bicubic import Bicubic
from ocrsr_lib.models.cdistnet import CDISTNET_CONFIGS, CDistNet, CDistNetConfig
from ocrsr_lib.models.edsr import EDSR, EDSR_CONFIGS, EDSRConfig
from ocrsr_lib.models.guide import (
    RECOGNIZER_CONFIGS,
    RecognizerConfig,
    TextRecognizer,
    encode_labels,
    to_recognizer_input,
)
from ocrsr_lib.models.joint import JOINT_CONFIGS, JointConfig, JointSR
from ocrsr_lib.models.rectified import (
    RectifiedSR,
    idle_parameter_names,
    set_stn_at_eval,
    stn_runs_at_evaluation,
)
from ocrsr_lib.models.registry import (
    OFFICIAL_REFERENCES,
    create_model,
    load_official,
    model_names,
    model_sizes,
    official_kinds,
    parameter_count,
    register_converter,
    register_model,
    unused_tensor_names,
)
from ocrsr_lib.models.stn import STN_CONFIGS, SpatialTransformer, STNConfig
from ocrsr_lib.models.tbsrn import TBSRN, TBSRN_CONFIGS, TBSRNConfig
from ocrsr_lib.models.upscale_batch import upscale_batch

__all__ = [
    "JOINT_CONFIGS",
    "JointConfig",
    "JointSR",
    "OFFICIAL_REFERENCES",
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
    "STN_CONFIGS",
    "STNConfig",
    "SpatialTransformer",
    "TBSRNConfig",
    "TextRecognizer",
    "create_model",
    "encode_labels",
    "load_official",
    "model_names",
    "model_sizes",
    "official_kinds",
    "parameter_count",
    "register_converter",
    "register_model",
    "set_stn_at_eval",
    "stn_runs_at_evaluation",
    "idle_parameter_names",
    "to_recognizer_input",
    "unused_tensor_names",
    "upscale_batch",
]
