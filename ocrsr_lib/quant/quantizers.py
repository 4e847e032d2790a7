"""Fake quantization of one weight tensor: a clipping range per tensor or per output channel
(ACIQ, min-max or an MSE search), then PyTorch's own fake-quantize operation on 2^bits levels."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ocrsr_lib.quant.aciq import aciq_alpha, check_bits, fitted_scale

METHODS = ("aciq-laplace", "aciq-gaussian", "aciq-mix", "minmax", "mse")
GRANULARITIES = ("tensor", "channel")
MSE_CANDIDATES = 100  # clipping fractions of the min-max range tried by the "mse" search


@dataclass(frozen=True)
class QuantSpec:
    """How a weight is quantized: bit width, clipping method, granularity, bias correction,
    and ACIQ's per-channel bit allocation (the same number of levels in total, shared out)."""

    bits: int
    method: str = "aciq-mix"
    granularity: str = "channel"
    bias_correction: bool = False
    bit_allocation: bool = False

    def __post_init__(self) -> None:
        check_bits(self.bits)
        if self.method not in METHODS:
            raise ValueError(f"unknown quantization method {self.method!r}; choose from {METHODS}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"unknown granularity {self.granularity!r}; choose {GRANULARITIES}")
        if self.bit_allocation and self.granularity != "channel":
            raise ValueError(
                "bit allocation shares levels between channels: use granularity 'channel'"
            )


@dataclass(frozen=True)
class Grid:
    """The integer grid a weight is rounded to: value = (q - zero_point) * scale, q in
    [0, levels - 1]; scale and zero_point have one entry (tensor) or one per output channel.
    zero_point is an integer, except after bias correction moves the grid per channel.
    `levels` is 2^bits, or one count per channel after bit allocation."""

    bits: int
    scale: torch.Tensor
    zero_point: torch.Tensor
    levels: torch.Tensor | None = None

    @property
    def per_channel(self) -> bool:
        return self.scale.numel() > 1

    def level_counts(self) -> torch.Tensor:
        """Levels per channel (or one entry for the tensor)."""
        if self.levels is not None:
            return self.levels
        return torch.full_like(self.scale.reshape(-1), 2**self.bits, dtype=torch.int64)

    def stored_bits(self) -> torch.Tensor:
        """Bits each channel's integers are stored with: ceil(log2(levels))."""
        return torch.ceil(torch.log2(self.level_counts().double())).long()

    def broadcast(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """scale and zero_point shaped to broadcast against `weight` (channels first)."""
        shape = (-1,) + (1,) * (weight.dim() - 1) if self.per_channel else ()
        return self.scale.reshape(shape), self.zero_point.float().reshape(shape)


@dataclass(frozen=True)
class QuantizedWeight:
    """A weight as stored: its integers (uint8, one per value) and the grid they live on."""

    integers: torch.Tensor
    grid: Grid

    def stored_bits(self) -> int:
        """Bits of all its integers at their stored widths (per channel after allocation)."""
        widths = self.grid.stored_bits()
        if widths.numel() == 1:
            return int(widths.item()) * self.integers.numel()
        return int((widths * (self.integers.numel() // len(widths))).sum().item())

    def values(self) -> torch.Tensor:
        """The float weight the integers stand for: (q - zero_point) * scale."""
        scale, zero_point = self.grid.broadcast(self.integers)
        return (self.integers.float() - zero_point) * scale


def rows(weight: torch.Tensor, granularity: str) -> torch.Tensor:
    """The weight as (groups, values): one row for the tensor, or one per output channel."""
    return weight.reshape(1, -1) if granularity == "tensor" else weight.reshape(weight.shape[0], -1)


def aciq_range(values: torch.Tensor, bits: int, prior: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: mean -+ alpha * scale, the scale being b = mean |x - mean| (Laplace) or the
    standard deviation (Gaussian), never beyond the row's own minimum and maximum."""
    mean = values.mean(dim=1)
    alpha = aciq_alpha(bits, prior) * fitted_scale(values, prior)
    low = torch.maximum(mean - alpha, values.amin(dim=1))
    return low, torch.minimum(mean + alpha, values.amax(dim=1))


def grid_for(low: torch.Tensor, high: torch.Tensor, bits: int) -> Grid:
    """The affine grid of 2^bits levels spanning [low, high] per row, with zero exactly on it."""
    low, high = (
        torch.minimum(low, torch.zeros_like(low)),
        torch.maximum(high, torch.zeros_like(high)),
    )
    levels = 2**bits - 1
    scale = ((high - low) / levels).clamp(min=torch.finfo(torch.float32).tiny * 1e6)
    zero_point = torch.round(-low / scale).clamp(0, levels).to(torch.int32)
    return Grid(bits, scale.float(), zero_point)


def fake_quantize(weight: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Round and clamp to the grid and map back to floats (torch's fake-quantize operation)."""
    levels = 2**grid.bits - 1
    if not grid.per_channel:
        return torch.fake_quantize_per_tensor_affine(
            weight.float(), grid.scale.item(), int(grid.zero_point.item()), 0, levels
        )
    return torch.fake_quantize_per_channel_affine(
        weight.float(), grid.scale, grid.zero_point, 0, 0, levels
    )


def _row_errors(
    values: torch.Tensor, grid: Grid, granularity: str, shape: torch.Size
) -> torch.Tensor:
    quantized = rows(fake_quantize(values.reshape(shape), grid), granularity)
    return (quantized - values).pow(2).mean(dim=1)


def _best_of(candidates: list[Grid], values: torch.Tensor, granularity: str, shape) -> Grid:
    """Per row, the candidate grid with the least squared error on that row."""
    errors = torch.stack([_row_errors(values, g, granularity, shape) for g in candidates])
    best = errors.argmin(dim=0)
    scale = torch.stack([g.scale.reshape(-1) for g in candidates]).gather(0, best[None])[0]
    zero = torch.stack([g.zero_point.reshape(-1) for g in candidates]).gather(0, best[None])[0]
    return Grid(candidates[0].bits, scale, zero)


def choose_grid(weight: torch.Tensor, spec: QuantSpec) -> Grid:
    """The grid `spec` picks for this weight (per tensor or per output channel)."""
    values = rows(weight.detach().float(), spec.granularity)
    low, high = values.amin(dim=1), values.amax(dim=1)
    if spec.method == "minmax":
        return grid_for(low, high, spec.bits)
    if spec.method in ("aciq-laplace", "aciq-gaussian"):
        return grid_for(
            *aciq_range(values, spec.bits, spec.method.removeprefix("aciq-")), spec.bits
        )
    if spec.method == "aciq-mix":
        priors = ("laplace", "gaussian")
        candidates = [grid_for(*aciq_range(values, spec.bits, p), spec.bits) for p in priors]
    else:  # "mse": shrink the min-max range around the mean, keep the best per row
        mean = values.mean(dim=1)
        fractions = torch.linspace(1.0, 0.05, MSE_CANDIDATES)
        candidates = [
            grid_for(mean + f * (low - mean), mean + f * (high - mean), spec.bits)
            for f in fractions
        ]
    return _best_of(candidates, values, spec.granularity, weight.shape)


def allocate_levels(grid: Grid) -> Grid:
    """ACIQ's per-channel bit allocation: the same total of 2^bits levels per channel, shared
    in proportion to each channel's range^(2/3) (which minimises the summed rounding error);
    each channel keeps its range and gets 2 to 256 levels."""
    bits, scale, zero_point = grid.bits, grid.scale.reshape(-1), grid.zero_point.float().reshape(-1)
    low, high = -zero_point * scale, (2**bits - 1 - zero_point) * scale
    weights = ((high - low) / 2).clamp(min=1e-30).pow(2 / 3)
    budget = len(weights) * 2**bits
    levels = torch.floor(budget * weights / weights.sum()).clamp(2, 256).long()
    new_scale = ((high - low) / (levels - 1)).clamp(min=torch.finfo(torch.float32).tiny * 1e6)
    new_zero = torch.minimum(torch.round(-low / new_scale), (levels - 1).float()).to(torch.int32)
    return Grid(8, new_scale.float(), new_zero, levels)


def to_integers(weight: torch.Tensor, grid: Grid) -> torch.Tensor:
    """The weight rounded to the grid's integers (uint8), as torch's fake-quantize rounds."""
    scale, zero_point = grid.broadcast(weight)
    rounded = torch.clamp(torch.round(weight.float() / scale + zero_point), 0, 2**grid.bits - 1)
    if grid.levels is not None:  # bit allocation: each channel has its own number of levels
        most = (grid.levels - 1).reshape((-1,) + (1,) * (weight.dim() - 1)).to(rounded)
        rounded = torch.minimum(rounded, most)
    return rounded.to(torch.uint8)


def correct_bias(weight: torch.Tensor, quantized: QuantizedWeight) -> QuantizedWeight:
    """ACIQ's bias correction: move each output channel's grid so that the quantized channel
    gets the original channel's mean and norm (about the mean); the integers stay."""
    original, ours = rows(weight.float(), "channel"), rows(quantized.values(), "channel")
    mean, our_mean = original.mean(dim=1), ours.mean(dim=1)
    norm = (original - mean[:, None]).norm(dim=1)
    our_norm = (ours - our_mean[:, None]).norm(dim=1)
    stretch = torch.where(our_norm > 0, norm / our_norm.clamp(min=1e-30), torch.ones_like(norm))
    grid = quantized.grid
    scale = grid.scale.reshape(-1).expand(len(mean)) * stretch
    # (q - z) s k + (m - m_q k) = (q - z') s k  with  z' = z - (m - m_q k) / (s k)
    zero_point = grid.zero_point.float().reshape(-1) - (mean - our_mean * stretch) / scale
    return QuantizedWeight(quantized.integers, Grid(grid.bits, scale, zero_point, grid.levels))


def quantize_weight(weight: torch.Tensor, spec: QuantSpec) -> QuantizedWeight:
    """The weight on the grid `spec` chooses (and moved by bias correction if asked for)."""
    grid = choose_grid(weight, spec)
    if spec.bit_allocation:
        grid = allocate_levels(grid)
    quantized = QuantizedWeight(to_integers(weight.detach(), grid), grid)
    return correct_bias(weight.detach(), quantized) if spec.bias_correction else quantized
