"""Image metrics."""

import math

import pytest
import torch

from ocrsr_lib.metrics import psnr


def test_psnr_on_hand_checkable_images():
    target = torch.zeros(2, 3, 4, 4)
    prediction = target.clone()
    prediction[0] += 1 / 255  # an error of one grey level everywhere: 20*log10(255)
    prediction[1] += 10 / 255
    values = psnr(prediction, target)
    assert values[0].item() == pytest.approx(20 * math.log10(255))
    assert values[1].item() == pytest.approx(20 * math.log10(25.5))
    assert psnr(target[0], target[0]).item() == math.inf


def test_psnr_ignores_the_mask_channel_and_checks_shapes():
    a, b = torch.rand(1, 4, 8, 8), torch.rand(1, 4, 8, 8)
    b2 = b.clone()
    b2[:, 3] = 0
    assert torch.equal(psnr(a, b), psnr(a, b2))
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, b[:, :3])
