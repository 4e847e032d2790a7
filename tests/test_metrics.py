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


def naive_ssim(x, y, size=11, sigma=1.5):
    """SSIM with explicit zero-padded windows, written independently of the library."""
    import numpy as np

    offsets = np.arange(size) - size // 2
    g = np.exp(-(offsets**2) / (2 * sigma**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    pad = size // 2
    values = []
    for c in range(3):
        a = np.pad(x[c].double().numpy(), pad)
        b = np.pad(y[c].double().numpy(), pad)
        for i in range(x.shape[1]):
            for j in range(x.shape[2]):
                pa, pb = a[i : i + size, j : j + size], b[i : i + size, j : j + size]
                ma, mb = (window * pa).sum(), (window * pb).sum()
                va = (window * pa * pa).sum() - ma**2
                vb = (window * pb * pb).sum() - mb**2
                cov = (window * pa * pb).sum() - ma * mb
                c1, c2 = 0.01**2, 0.03**2
                values.append(
                    ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
                )
    return float(np.mean(values))


def test_ssim_matches_an_independent_windowed_implementation():
    from ocrsr_lib.metrics import ssim

    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 20)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    values = ssim(x, y)
    for i in range(2):
        assert values[i].item() == pytest.approx(naive_ssim(x[i], y[i]), abs=1e-5)
    assert ssim(x[0], x[0]).item() == pytest.approx(1.0, abs=1e-6)
    assert ssim(x, 1 - x).max() < 0.5


def test_evaluation_does_not_depend_on_batch_size():
    from ocrsr_lib.metrics import evaluate_sr
    from ocrsr_lib.models import Bicubic

    torch.manual_seed(1)
    lr, hr = torch.rand(10, 3, 16, 64), torch.rand(10, 3, 32, 128)
    labels = [f"w{i}" for i in range(10)]
    dataset = [(lr[i], hr[i], labels[i]) for i in range(10)]
    splits = {"easy": dataset[:4], "hard": dataset[4:]}
    one = evaluate_sr(Bicubic(), splits, batch_size=1)
    many = evaluate_sr(Bicubic(), splits, batch_size=7)
    for split in ("easy", "hard", "average"):
        assert one[split]["psnr"] == pytest.approx(many[split]["psnr"], rel=1e-6)
        assert one[split]["ssim"] == pytest.approx(many[split]["ssim"], rel=1e-6)
    expected = (one["easy"]["psnr"] * 4 + one["hard"]["psnr"] * 6) / 10
    assert one["average"]["psnr"] == pytest.approx(expected) and one["average"]["images"] == 10
