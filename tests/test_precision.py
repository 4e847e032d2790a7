"""bf16 autocast against float32: geometry stays float32, the report measures real differences."""

import pytest
import torch

from ocrsr_lib.models import EDSR, EDSR_CONFIGS, RectifiedSR
from ocrsr_lib.models.cdistnet import CDISTNET_CONFIGS, TPS, CDistNet
from ocrsr_lib.models.stn import SpatialTransformer
from ocrsr_lib.precision import compare_precisions, in_both_precisions, relative_rms

CPU = torch.device("cpu")


def test_relative_rms_is_zero_for_equal_tensors_and_scale_free():
    reference = torch.randn(4, 8)
    assert relative_rms(reference, reference) == 0.0
    assert relative_rms(reference, 1.1 * reference) == pytest.approx(0.1, rel=1e-5)
    assert relative_rms(3 * reference, 3.3 * reference) == pytest.approx(0.1, rel=1e-5)


def test_bf16_autocast_changes_a_matrix_product_but_returns_float32():
    torch.manual_seed(0)
    layer = torch.nn.Linear(256, 256)
    inputs = torch.randn(8, 256)
    reference, mixed = in_both_precisions(lambda: layer(inputs), CPU)
    assert mixed.dtype == torch.float32
    assert 1e-4 < relative_rms(reference, mixed) < 2e-2  # bf16 keeps about 3 digits


@pytest.mark.parametrize(
    "rectifier",
    [lambda: SpatialTransformer(), lambda: TPS(CDISTNET_CONFIGS["demo"])],
    ids=["stn", "cdistnet-tps"],
)
def test_sampling_grids_are_computed_in_float32_under_autocast(rectifier):
    """The grid and the sampling run in float32; only the localization convolutions change."""
    torch.manual_seed(0)
    module = rectifier().eval()
    shape = (2, 3, 16, 64) if isinstance(module, SpatialTransformer) else (2, 3, 32, 128)
    images = torch.rand(shape)
    reference, mixed = in_both_precisions(lambda: module(images), CPU)
    assert mixed.dtype == torch.float32
    assert relative_rms(reference, mixed) < 5e-3


def test_compare_precisions_reports_every_measure_in_range():
    torch.manual_seed(0)
    sr = RectifiedSR(EDSR(EDSR_CONFIGS["demo"]))
    ocr = CDistNet(CDISTNET_CONFIGS["demo"])
    batches = [(torch.rand(3, 3, 16, 64), torch.rand(3, 3, 32, 128), ["abc", "road", "7"])] * 2
    report = compare_precisions(sr, ocr, batches, CPU)
    assert report.images == 6
    assert 0 < report.sr_relative_rms < 0.05 and 0 < report.sr_max_abs < 1
    assert abs(report.psnr_float32 - report.psnr_bf16) < 0.5
    assert 0 <= report.logits_relative_rms < 0.2
    assert 0 <= report.readings_agree <= 1 and 0 <= report.accuracy_bf16 <= 1
    assert len(report.lines()) == 5
