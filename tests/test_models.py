"""Model architectures: shapes, sizes, initial behaviour, paper-size forward and backward."""

import pytest
import torch

from ocrsr_lib.models import (
    TBSRN,
    TBSRN_CONFIGS,
    Bicubic,
    RectifiedSR,
    create_model,
    parameter_count,
    set_stn_at_eval,
    stn_runs_at_evaluation,
    upscale_batch,
)
from ocrsr_lib.models.edsr import EDSR, EDSR_CONFIGS, EDSRConfig
from ocrsr_lib.models.stn import (
    LocalizationNetwork,
    SpatialTransformer,
    TPSSpatialTransformer,
    control_point_grid,
)
from ocrsr_lib.runs.sr import SR_RECIPES, build


def test_parameter_count_counts_frozen_parameters_unless_asked():
    model = EDSR(EDSRConfig(residual_blocks=1, features=4, residual_scale=1.0))
    frozen = 2 * (3 * 3 + 3)  # the two mean-shift 1x1 convolutions
    assert parameter_count(model) == parameter_count(model, trainable_only=True) + frozen


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


def test_tbsrn_paper_size_runs_forward_and_backward_on_cpu():
    from ocrsr_lib.models import TBSRN, TBSRN_CONFIGS

    model = TBSRN(TBSRN_CONFIGS["paper"])
    # the official 3,210,335 also counts tensors it builds but never uses (GRUs, a stray conv)
    assert parameter_count(model) == 2_980_460
    sr = model(torch.rand(2, 3, 16, 64))
    sr.mean().backward()
    assert sr.shape == (2, 3, 32, 128) and -1 <= sr.min() and sr.max() <= 1
    assert model.stn.stn_head.stn_fc2.bias.grad is not None


def test_tbsrn_runs_its_stn_at_evaluation_only_when_asked():
    from ocrsr_lib.models import TBSRN, TBSRNConfig

    lr = torch.rand(2, 3, 16, 64)
    model = TBSRN(TBSRNConfig(residual_blocks=1, channels=16, stn_at_eval=False)).eval()
    with torch.no_grad():
        without_stn = model(lr)
        model.stn.stn_head.stn_fc2.bias.data += 0.05  # move the control points
        assert torch.equal(model(lr), without_stn)
        asked = TBSRN(TBSRNConfig(residual_blocks=1, channels=16, stn_at_eval=True)).eval()
        asked.load_state_dict(model.state_dict())
        assert not torch.allclose(asked(lr), without_stn)


def test_positional_encoding_alternates_sin_and_cos_over_x_then_y():
    from ocrsr_lib.models.tbsrn import positional_encoding_2d

    code = positional_encoding_2d(8, 3, 5)
    assert code.shape == (8, 3, 5)
    assert torch.allclose(code[0, 0], torch.sin(torch.arange(5.0)))
    assert torch.allclose(code[1, 2], torch.cos(torch.arange(5.0)))
    assert torch.allclose(code[4, :, 0], torch.sin(torch.arange(3.0)))
    assert torch.allclose(code[5, :, 4], torch.cos(torch.arange(3.0)))


def test_rectified_sr_is_stn_then_edsr_and_counts_the_paper_size():
    from ocrsr_lib.models import RectifiedSR

    model = RectifiedSR(EDSR(EDSR_CONFIGS["paper"]))
    # EDSR x2 plus the STN's 1,854,760 (the official STN head's count)
    assert parameter_count(model) == 40_729_627 + 1_854_760
    small = RectifiedSR(EDSR(EDSRConfig(residual_blocks=1, features=8, residual_scale=1.0)))
    lr = torch.rand(2, 3, 16, 64)
    small.train()
    assert small(lr).shape == (2, 3, 32, 128)
    small.eval()
    assert torch.equal(small(lr), small.sr(lr))


def test_the_stn_at_evaluation_is_a_switch_for_both_rectified_models():
    images = torch.rand(2, 3, 16, 64)
    for model in (RectifiedSR(EDSR()), TBSRN(TBSRN_CONFIGS["demo"])):
        with torch.no_grad():
            model.stn.stn_head.stn_fc2.bias.add_(0.05)  # a visible warp
        model.eval()
        without = model(images)
        with_stn = set_stn_at_eval(model, True)(images)
        assert not torch.allclose(without, with_stn)
        assert torch.equal(set_stn_at_eval(model, False)(images), without)
    with pytest.raises(ValueError, match="EDSR has no spatial transformer"):
        set_stn_at_eval(EDSR(), True)


@pytest.mark.parametrize("name", ["stn-edsr", "tbsrn", "edsr"])
def test_upscale_batch_gives_the_models_output_and_leaves_the_weights_as_they_are(name):
    torch.manual_seed(0)
    model = create_model(name, "demo").eval()
    lr = torch.rand(4, 3, 16, 64)
    with torch.no_grad():
        expected, got = model(lr), upscale_batch(model, lr)
    assert got.shape == expected.shape == (4, 3, 32, 128)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert all(parameter.is_contiguous() for parameter in model.parameters())


@pytest.mark.parametrize("name", ["stn-edsr", "tbsrn"])
def test_the_stn_keeps_a_channels_last_batch_channels_last_and_the_default_layout_default(name):
    torch.manual_seed(0)
    model = create_model(name, "demo", stn_at_eval=True).eval()
    lr = torch.rand(2, 3, 16, 64)
    with torch.no_grad():
        channels_last = model.stn(lr.contiguous(memory_format=torch.channels_last))
        default = model.stn(lr)
        expected, got = model(lr), upscale_batch(model, lr)
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    assert default.is_contiguous() and not default.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(channels_last, default)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_trained_sr_runs_rectify_at_evaluation_as_the_paper_does():
    for name, recipe in SR_RECIPES["demo"].items():
        model = build(recipe)
        assert stn_runs_at_evaluation(model) == (recipe.model != "edsr"), name
