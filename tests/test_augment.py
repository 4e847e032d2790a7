"""CDistNet training augmentation: shapes, ranges, switching off, reproducibility, errors."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ocrsr_lib.augment import AugmentConfig, Rescale, augment_batch, augmentation
from ocrsr_lib.models.cdistnet import CDISTNET_CONFIGS, CDistNet
from ocrsr_lib.runs.cdistnet import cdistnet_batch_loss

ALWAYS = AugmentConfig(geometry_probability=1, deterioration_probability=1, color_probability=1)
NEVER = AugmentConfig(geometry_probability=0, deterioration_probability=0, color_probability=0)


def test_always_on_changes_every_image_and_keeps_shape_and_range():
    torch.manual_seed(0)
    images = torch.rand(4, 3, 32, 128)
    augmented = augment_batch(images, augmentation(ALWAYS))
    assert augmented.shape == images.shape
    assert augmented.min() >= 0 and augmented.max() <= 1
    assert all(not torch.allclose(a, b) for a, b in zip(augmented, images, strict=True))


def test_switched_off_is_the_identity_and_a_seed_repeats_a_draw():
    images = torch.rand(3, 3, 32, 128)
    assert torch.equal(augment_batch(images, augmentation(NEVER)), images)
    torch.manual_seed(7)
    first = augment_batch(images, augmentation())
    torch.manual_seed(7)
    assert torch.equal(augment_batch(images, augmentation()), first)


def test_rescale_loses_detail_but_keeps_the_size():
    torch.manual_seed(0)
    stripes = torch.zeros(3, 32, 128)
    stripes[:, :, ::2] = 1.0
    blurred = Rescale(4.0)(stripes)
    assert blurred.shape == stripes.shape
    assert blurred.std() < stripes.std()


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(ValueError, match="color_probability must be in"):
        AugmentConfig(color_probability=1.5)
    with pytest.raises(ValueError, match="rescale is a factor"):
        AugmentConfig(rescale=0.5)
    with pytest.raises(ValueError, match="expected RGB images"):
        augment_batch(torch.rand(2, 1, 32, 128), augmentation())


def test_the_batch_loss_augments_only_while_training():
    torch.manual_seed(0)
    model = CDistNet(replace(CDISTNET_CONFIGS["demo"], dropout=0.0)).eval()  # no other randomness
    batch = (torch.rand(2, 3, 16, 64), torch.rand(2, 3, 32, 128), ["cat", "dog"])
    plain = cdistnet_batch_loss("hr")(model, batch, torch.device("cpu"))
    augmented = cdistnet_batch_loss("hr", augment=augmentation(ALWAYS))
    assert augmented(model, batch, torch.device("cpu")).item() == pytest.approx(plain.item())
    model.train()
    torch.manual_seed(1)
    training = augmented(model, batch, torch.device("cpu"))
    without = cdistnet_batch_loss("hr")(model, batch, torch.device("cpu"))
    assert without.item() == pytest.approx(cdistnet_batch_loss("hr")(model, batch, "cpu").item())
    assert training.item() != pytest.approx(without.item())
