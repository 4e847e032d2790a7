"""Training augmentation for CDistNet: the official pipeline's three kinds, sized for 32x128 crops.

The official training (ABINet's transforms) applies, each with its own probability: a random
geometry (rotation, affine or perspective), a deterioration (noise, blur, down- and
up-scaling) and a colour jitter. Its magnitudes (45 degree rotation, scale 0.5 to 2) are meant
for whole scene-text images; on TextZoom's tight 32x128 word crops they cut letters off, so
the defaults here are milder. Every value is a field and can be set back to the official one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.transforms import v2


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and magnitudes; the official values are in the comments."""

    geometry_probability: float = 0.5  # official 0.5
    rotation_degrees: float = 10.0  # official 45
    scale: tuple[float, float] = (0.85, 1.15)  # official (0.5, 2)
    shear_degrees: float = 10.0  # official 45 (x) and 15 (y)
    perspective: float = 0.2  # official distortion 0.5
    deterioration_probability: float = 0.25  # official 0.25
    noise_std: float = 0.0175  # official variance 20 on 0..255: std 4.5 / 255
    blur_sigma: tuple[float, float] = (0.1, 1.0)  # official motion blur up to 4 pixels
    rescale: float = 2.0  # down- and up-scaling by up to this factor; official 4
    color_probability: float = 0.25  # official 0.25
    brightness: float = 0.5
    contrast: float = 0.5
    saturation: float = 0.5
    hue: float = 0.1

    def __post_init__(self) -> None:
        for name in ("geometry_probability", "deterioration_probability", "color_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.rescale < 1.0:
            raise ValueError(f"rescale is a factor >= 1, got {self.rescale}")


class Rescale(torch.nn.Module):
    """Downscale by a random factor in [1, `factor`] and scale back (lost detail, as in LR)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        factor = 1 + torch.rand(()).item() * (self.factor - 1)
        small = (max(1, round(height / factor)), max(1, round(width / factor)))
        low = v2.functional.resize(image, list(small), antialias=True)
        return v2.functional.resize(low, [height, width], antialias=False)


def augmentation(config: AugmentConfig = AugmentConfig()) -> v2.Transform:
    """The per-image transform for RGB tensors in [0, 1] (uses torch's global random state)."""
    geometry = v2.RandomChoice(
        [
            v2.RandomRotation(config.rotation_degrees, fill=0.5),
            v2.RandomAffine(degrees=0, scale=config.scale, shear=config.shear_degrees, fill=0.5),
            v2.RandomPerspective(config.perspective, p=1.0, fill=0.5),
        ]
    )
    deterioration = v2.Compose(
        [
            v2.GaussianNoise(sigma=config.noise_std, clip=True),
            v2.GaussianBlur(3, sigma=config.blur_sigma),
            Rescale(config.rescale),
        ]
    )
    color = v2.ColorJitter(config.brightness, config.contrast, config.saturation, config.hue)
    return v2.Compose(
        [
            v2.RandomApply([geometry], p=config.geometry_probability),
            v2.RandomApply([deterioration], p=config.deterioration_probability),
            v2.RandomApply([color], p=config.color_probability),
        ]
    )


def augment_batch(images: torch.Tensor, transform: v2.Transform) -> torch.Tensor:
    """Apply `transform` to each image of an RGB batch (B, 3, H, W) on its own; clip to [0, 1]."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"expected RGB images (B, 3, H, W), got {tuple(images.shape)}")
    return torch.stack([transform(image) for image in images]).clamp(0, 1)
