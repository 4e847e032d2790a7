"""Model architectures: shapes, sizes, initial behaviour, paper-size forward and backward."""

import pytest
import torch

from ocrsr_lib.models import Bicubic
from ocrsr_lib.models.edsr import EDSR, EDSR_CONFIGS, EDSRConfig
from ocrsr_lib.models.stn import (
    LocalizationNetwork,
    SpatialTransformer,
    TPSSpatialTransformer,
    control_point_grid,
)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_edsr_paper_size_matches_the_published_count():
    # 40.7M for EDSR x2 (32 blocks, 256 features), mean-shift convolutions included
    assert parameter_count(EDSR(EDSR_CONFIGS["paper"])) == 40_729_627
    assert parameter_count(EDSR(EDSR_CONFIGS["baseline"])) == 1_369_883


def test_edsr_doubles_the_resolution_and_ignores_a_mask_channel():
    model = EDSR(EDSRConfig(residual_blocks=1, features=8, residual_scale=1.0)).eval()
    lr = torch.rand(2, 4, 16, 64)
    sr = model(lr)
    assert sr.shape == (2, 3, 32, 128)
    assert torch.equal(sr, model(lr[:, :3]))


def test_edsr_mean_shift_is_frozen_and_cancels_out():
    model = EDSR(EDSRConfig(residual_blocks=1, features=8, residual_scale=1.0, rgb_range=255))
    assert not any(p.requires_grad for p in model.sub_mean.parameters())
    x = torch.rand(1, 3, 4, 4) * 255
    assert torch.allclose(model.add_mean(model.sub_mean(x)), x, atol=1e-4)


def test_edsr_paper_size_runs_forward_and_backward_on_cpu():
    model = EDSR(EDSR_CONFIGS["paper"])
    sr = model(torch.rand(1, 3, 16, 64))
    sr.mean().backward()
    assert sr.shape == (1, 3, 32, 128)
    assert model.head[0].weight.grad is not None and model.sub_mean.weight.grad is None


def test_edsr_rejects_other_scales():
    with pytest.raises(ValueError, match="x2"):
        EDSR(EDSRConfig(residual_blocks=1, features=8, residual_scale=1.0, scale=4))


def test_control_points_lie_on_the_top_and_bottom_edges():
    points = control_point_grid(20, (0.05, 0.05))
    assert points.shape == (20, 2)
    assert torch.allclose(points[:10, 1], torch.full((10,), 0.05))
    assert torch.allclose(points[10:, 1], torch.full((10,), 0.95))
    assert points[0, 0] == pytest.approx(0.05) and points[9, 0] == pytest.approx(0.95)


def test_tps_through_the_target_points_is_the_identity():
    tps = TPSSpatialTransformer((16, 64))
    # source points equal to the target points: every output pixel samples its own position
    grid = tps.sampling_grid(tps.target_control_points[None])
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 64), indexing="ij")
    assert torch.allclose(grid[0, ..., 0], xs, atol=1e-4)
    assert torch.allclose(grid[0, ..., 1], ys, atol=1e-4)


def test_localization_network_starts_on_the_control_point_grid():
    network = LocalizationNetwork().eval()
    points = network(torch.rand(3, 3, 16, 64))
    assert points.shape == (3, 20, 2)
    assert torch.allclose(points, control_point_grid(20, (0.01, 0.01)).expand(3, 20, 2))


def test_spatial_transformer_keeps_the_lr_size_and_takes_a_mask_channel():
    stn = SpatialTransformer(in_channels=4).eval()
    assert stn(torch.rand(2, 4, 16, 64)).shape == (2, 4, 16, 64)


def test_bicubic_has_no_parameters_and_keeps_values_in_range():
    model = Bicubic()
    sr = model(torch.rand(2, 4, 16, 64))
    assert sr.shape == (2, 3, 32, 128) and parameter_count(model) == 0
    assert 0 <= sr.min() and sr.max() <= 1
    flat = torch.full((1, 3, 16, 64), 0.25)
    assert torch.allclose(model(flat), torch.full((1, 3, 32, 128), 0.25))
