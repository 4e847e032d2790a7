"""Image metrics, and their plain-text tables (`ocrsr_lib.tables`)."""

import math

import pytest
import torch

from ocrsr_lib.metrics import evaluate_sr, psnr, ssim, ssim_map
from ocrsr_lib.models import Bicubic
from ocrsr_lib.tables import format_evaluation, format_report


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
    # a 3-channel SR meets a 4-channel (masked) HR: only RGB is compared
    assert torch.equal(psnr(a[:, :3], b), psnr(a, b))
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, b[:, :, :4])
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a[:, :2], b[:, :2])


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
    torch.manual_seed(0)
    x = torch.rand(2, 3, 12, 20)
    y = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    values = ssim(x, y)
    for i in range(2):
        assert values[i].item() == pytest.approx(naive_ssim(x[i], y[i]), abs=1e-5)
    assert ssim(x[0], x[0]).item() == pytest.approx(1.0, abs=1e-6)
    assert ssim(x, 1 - x).max() < 0.5


def test_evaluation_does_not_depend_on_batch_size():
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


def noisy_pair(seed=0, count=2):
    generator = torch.Generator().manual_seed(seed)
    clean = torch.rand(count, 3, 32, 128, generator=generator)
    noise = 0.1 * torch.randn(count, 3, 32, 128, generator=generator)
    return clean, (clean + noise).clamp(0, 1)


def test_ssim_equals_scikit_image_away_from_the_border():
    """skimage filters with reflected borders and drops a 5-pixel margin before averaging.

    TextZoom pads with zeros and averages every pixel. Within the margin both use the same
    normalised 11x11 Gaussian (sigma 1.5), so the SSIM maps agree there, and the mean of our map
    over the interior is exactly skimage's value.
    """
    from skimage.metrics import structural_similarity

    prediction, target = noisy_pair()
    maps = ssim_map(prediction, target).double()
    for i in range(len(prediction)):
        reference, reference_map = structural_similarity(
            prediction[i].double().numpy(),
            target[i].double().numpy(),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.0,
            channel_axis=0,
            full=True,
        )
        interior = maps[i, :, 5:-5, 5:-5]
        assert torch.allclose(interior, torch.from_numpy(reference_map[:, 5:-5, 5:-5]), atol=1e-5)
        assert interior.mean().item() == pytest.approx(reference, abs=1e-6)
        # the zero-padded border is where the two differ: it must count in the TextZoom value
        assert abs(ssim(prediction[i], target[i]).item() - reference) > 1e-3


def test_ssim_is_one_for_identical_images_and_ignores_the_mask():
    prediction, target = noisy_pair(1)
    assert torch.allclose(ssim(target, target), torch.ones(2), atol=1e-6)
    masked = torch.cat([target, torch.rand(2, 1, 32, 128)], dim=1)
    assert torch.equal(ssim(prediction, masked), ssim(prediction, target))


def test_metrics_of_a_batch_are_the_metrics_of_each_image():
    prediction, target = noisy_pair(2, count=5)
    together_psnr, together_ssim = psnr(prediction, target), ssim(prediction, target)
    for i in range(5):
        assert psnr(prediction[i], target[i]).item() == pytest.approx(together_psnr[i].item())
        assert ssim(prediction[i], target[i]).item() == pytest.approx(
            together_ssim[i].item(), abs=1e-6
        )


class Overshoot(torch.nn.Module):
    """Bicubic x2 pushed outside [0, 1], to see whether evaluation clamps; records its mode."""

    def forward(self, x):
        self.seen_training = self.training
        return Bicubic()(x) * 1.5 - 0.25


def test_evaluation_runs_in_eval_mode_and_clamps_only_on_request():
    hr = torch.rand(3, 3, 32, 128, generator=torch.Generator().manual_seed(4))
    lr = torch.nn.functional.avg_pool2d(hr, 2)
    split = {"val": [(lr[i], hr[i], "w") for i in range(3)]}
    model = Overshoot().train()
    plain = evaluate_sr(model, split)
    assert model.training and not model.seen_training
    sr = model(lr)
    assert plain["val"]["psnr"] == pytest.approx(psnr(sr, hr).mean().item())
    assert plain["val"]["ssim"] == pytest.approx(ssim(sr, hr).mean().item(), abs=1e-6)
    clamped = evaluate_sr(model, split, clamp=True)
    assert clamped["val"]["psnr"] == pytest.approx(psnr(sr.clamp(0, 1), hr).mean().item())
    assert clamped["val"]["psnr"] > plain["val"]["psnr"]
    assert list(plain) == ["val"]  # one split: no average row


def test_reports_format_as_plain_tables():
    report = {
        "easy": {"psnr": 24.1234, "ssim": 0.87654, "images": 1619},
        "average": {"psnr": 21.5, "ssim": 0.75, "images": 4373},
    }
    lines = format_evaluation(report).splitlines()
    assert [line.split() for line in lines] == [
        ["split", "PSNR", "SSIM", "images"],
        ["easy", "24.12", "0.8765", "1619"],
        ["average", "21.50", "0.7500", "4373"],
    ]
    assert len({len(line) for line in lines}) == 1  # columns line up
    table = format_report({"bicubic": report, "TBSRN": report}, "psnr").splitlines()
    assert table[0].split() == ["model", "easy", "average"]
    assert table[2].split() == ["TBSRN", "24.12", "21.5"]
