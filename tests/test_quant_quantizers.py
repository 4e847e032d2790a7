"""Weight quantizers: grids, error bounds, per-channel vs per-tensor, bias correction."""

import pytest
import torch

from ocrsr_lib.quant.quantizers import QuantSpec, choose_grid, fake_quantize, quantize_weight


def laplace_weight(rows: int = 32, columns: int = 256, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    uniform = torch.rand(rows, columns, generator=generator) - 0.5
    return -0.02 * uniform.sign() * torch.log1p(-2 * uniform.abs())  # Laplace, b = 0.02


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).pow(2).mean().item()


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_min_max_rounding_error_is_at_most_half_a_step(bits):
    weight = laplace_weight()
    stored = quantize_weight(weight, QuantSpec(bits, "minmax", "tensor"))
    quantized, grid = stored.values(), stored.grid
    assert (quantized - weight).abs().max() <= grid.scale.item() / 2 + 1e-7
    assert quantized.unique().numel() <= 2**bits
    assert torch.allclose(quantized, torch.round(quantized / grid.scale) * grid.scale, atol=1e-6)


def test_zero_is_exactly_representable():
    weight = torch.cat([laplace_weight() + 0.01, torch.zeros(32, 1)], 1)
    quantized = quantize_weight(weight, QuantSpec(3, "minmax")).values()
    assert (quantized[:, -1] == 0).all()


def test_per_channel_grids_follow_each_channels_range():
    weight = torch.cat([laplace_weight(4), 100 * laplace_weight(4, seed=1)])
    per_tensor_weight = quantize_weight(weight, QuantSpec(4, "minmax", "tensor"))
    per_channel_weight = quantize_weight(weight, QuantSpec(4, "minmax", "channel"))
    per_tensor, tensor_grid = per_tensor_weight.values(), per_tensor_weight.grid
    per_channel, channel_grid = per_channel_weight.values(), per_channel_weight.grid
    assert tensor_grid.scale.numel() == 1 and channel_grid.scale.shape == (8,)
    small = slice(0, 4)  # the small channels lose everything to the big ones' range per tensor
    assert mse(per_channel[small], weight[small]) < mse(per_tensor[small], weight[small]) / 20
    assert (per_tensor[small] == 0).all()  # all below half a step of the big range


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_aciq_clipping_beats_min_max_on_laplace_weights_at_low_bit_widths(bits):
    weight = laplace_weight()
    minmax = quantize_weight(weight, QuantSpec(bits, "minmax", "tensor")).values()
    aciq = quantize_weight(weight, QuantSpec(bits, "aciq-laplace", "tensor")).values()
    assert mse(aciq, weight) < 0.8 * mse(minmax, weight)


def test_mix_and_mse_search_are_never_worse_than_their_candidates():
    weight = laplace_weight()
    for bits in (2, 4, 6):
        errors = {
            method: mse(quantize_weight(weight, QuantSpec(bits, method, "tensor")).values(), weight)
            for method in ("aciq-laplace", "aciq-gaussian", "aciq-mix", "minmax", "mse")
        }
        assert errors["aciq-mix"] <= min(errors["aciq-laplace"], errors["aciq-gaussian"]) + 1e-12
        assert errors["mse"] <= errors["minmax"] + 1e-12


def test_bias_correction_restores_each_channels_mean_and_norm():
    weight = laplace_weight() + torch.linspace(-0.01, 0.01, 32)[:, None]
    quantized = quantize_weight(weight, QuantSpec(2, "aciq-laplace", "channel", True)).values()
    assert torch.allclose(quantized.mean(1), weight.mean(1), atol=1e-7)
    centred = (quantized - quantized.mean(1, keepdim=True)).norm(dim=1)
    assert torch.allclose(centred, (weight - weight.mean(1, keepdim=True)).norm(dim=1), rtol=1e-5)


def test_grids_are_chosen_per_output_channel_of_a_convolution():
    weight = laplace_weight(8, 27).reshape(8, 3, 3, 3)
    grid = choose_grid(weight, QuantSpec(4, "mse", "channel"))
    assert grid.scale.shape == (8,) and grid.zero_point.dtype == torch.int32
    stored = quantize_weight(weight, QuantSpec(4, "mse", "channel"))
    assert stored.values().shape == weight.shape and stored.integers.dtype == torch.uint8
    assert int(stored.integers.max()) <= 15


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((9,), "bits must be an integer from 2 to 8"),
        ((4, "kmeans"), "unknown quantization method 'kmeans'"),
        ((4, "minmax", "row"), "unknown granularity 'row'"),
    ],
)
def test_bad_specs_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        QuantSpec(*arguments)


@pytest.mark.parametrize("granularity", ["tensor", "channel"])
def test_stored_integers_give_what_torchs_fake_quantize_gives(granularity):
    weight = laplace_weight(8, 64)
    for method in ("minmax", "aciq-mix", "mse"):
        spec = QuantSpec(3, method, granularity)
        stored = quantize_weight(weight, spec)
        assert torch.equal(stored.values(), fake_quantize(weight, stored.grid))


def channels_of_different_scales() -> torch.Tensor:
    scales = torch.logspace(-3, -1, 8)[:, None]
    return laplace_weight(8, 512) / 0.02 * scales


def test_bit_allocation_shares_the_level_budget_by_range_and_lowers_the_total_error():
    weight = channels_of_different_scales()
    uniform = quantize_weight(weight, QuantSpec(3, "minmax", "channel"))
    allocated = quantize_weight(weight, QuantSpec(3, "minmax", "channel", bit_allocation=True))
    levels = allocated.grid.levels
    assert int(levels.sum()) <= 8 * 2**3 and int(levels.min()) >= 2 and int(levels.max()) <= 256
    assert levels.tolist() == sorted(levels.tolist())  # wider channels get more levels
    assert (allocated.integers.amax(dim=1) < levels).all()
    assert mse(allocated.values(), weight) < 0.5 * mse(uniform.values(), weight)
    widths = allocated.grid.stored_bits()
    assert allocated.stored_bits() == int((widths * 512).sum())


def test_bit_allocation_needs_per_channel_grids():
    with pytest.raises(ValueError, match="use granularity 'channel'"):
        QuantSpec(4, "minmax", "tensor", bit_allocation=True)
