"""CDistNet training: the official label-smoothed loss, the Noam schedule, batch losses."""

from __future__ import annotations

import pytest
import torch

from ocrsr_lib.evaluation import word_accuracy
from ocrsr_lib.models import OFFICIAL_REFERENCES
from ocrsr_lib.models.cdistnet import CDISTNET_CONFIGS, CDistNet, encode_targets
from ocrsr_lib.runs.cdistnet import cdistnet_batch_loss, label_smoothed_cross_entropy
from ocrsr_lib.train import TrainConfig

FIXTURES = OFFICIAL_REFERENCES


@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(FIXTURES / "cdistnet_small_io.pt", weights_only=True)


def test_label_smoothed_loss_is_the_official_one(reference):
    targets = reference["tgt"][:, 1:]
    smoothed = label_smoothed_cross_entropy(reference["logits"], targets)
    plain = label_smoothed_cross_entropy(reference["logits"], targets, smoothing=0.0)
    assert smoothed.item() == pytest.approx(reference["loss_label_smoothed"], rel=1e-6)
    assert plain.item() == pytest.approx(reference["loss_plain_ce"], rel=1e-6)
    with pytest.raises(ValueError, match="disagree"):
        label_smoothed_cross_entropy(reference["logits"], targets[:, :3])


def test_padding_positions_do_not_count():
    logits = torch.randn(4, 40)
    targets = torch.tensor([5, 7, 0, 0])
    assert label_smoothed_cross_entropy(logits, targets).item() == pytest.approx(
        label_smoothed_cross_entropy(logits[:2], targets[:2]).item()
    )


def test_noam_schedule_is_the_official_one(reference):
    config = TrainConfig(steps=1, schedule="noam", warmup_steps=10000, learning_rate=512**-0.5)
    for step, official in reference["noam_lr"].items():
        if step.isdigit():
            assert config.learning_rate_at(int(step) - 1, 10**6) == pytest.approx(official, 1e-12)


def test_fine_tuning_on_sr_images_trains_cdistnet_and_never_the_sr_model():
    torch.manual_seed(0)
    model = CDistNet(CDISTNET_CONFIGS["demo"]).train()
    upscale = torch.nn.Upsample(scale_factor=2, mode="bilinear")
    sr = torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1), upscale)
    batch = (torch.rand(4, 3, 16, 64), torch.rand(4, 3, 32, 128), ["cat", "Dog!", "a1", "zoom"])
    loss_of = cdistnet_batch_loss(sr)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = loss_of(model, batch, torch.device("cpu"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is None for p in sr.parameters()) and not sr.training
    hr_loss = cdistnet_batch_loss("hr")(model, batch, torch.device("cpu"))
    assert hr_loss.item() > 0 and encode_targets(batch[2]).shape == (4, 6)


def test_word_accuracy_works_with_cdistnet():
    torch.manual_seed(0)
    model = CDistNet(CDISTNET_CONFIGS["demo"])
    data = [(torch.rand(3, 16, 64), torch.rand(3, 32, 128), "word")] * 2
    assert word_accuracy(model, data, "hr", batch_size=2) in (0.0, 0.5, 1.0)
