"""The text-focus loss: each term on checkable inputs, the official numbers, gradient flow,
the terms the training loop logs."""

from __future__ import annotations

import copy
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ocrsr_lib.losses import (
    SYMBOLS,
    TextFocusLoss,
    TextFocusWeights,
    confusion_counts,
    load_official_confusion,
    most_confused,
    official_weight_table,
    weighted_cross_entropy,
    weights_from_confusions,
)
from ocrsr_lib.models import OFFICIAL_REFERENCES, Bicubic, load_official
from ocrsr_lib.models.guide import ALPHABET, TextRecognizer, encode_labels, to_recognizer_input
from ocrsr_lib.train import TrainConfig, epoch_order, train_sr

FIXTURES = OFFICIAL_REFERENCES


@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(FIXTURES / "tbsrn_recognizer_small_io.pt", weights_only=True)


@pytest.fixture
def guide() -> TextRecognizer:
    return load_official("tbsrn-recognizer", FIXTURES / "tbsrn_recognizer_small.pt")


def test_weighted_cross_entropy_is_plain_cross_entropy_with_unit_weights():
    logits = torch.randn(7, SYMBOLS)
    targets = torch.randint(0, SYMBOLS, (7,))
    plain = F.cross_entropy(logits, targets)
    ours = weighted_cross_entropy(logits, targets, torch.ones(SYMBOLS, SYMBOLS))
    assert torch.allclose(ours, plain, atol=1e-6)


def test_weighted_cross_entropy_by_hand():
    logits = torch.tensor([[0.0, math.log(2.0), 0.0]])
    table = torch.tensor([[1.0, 3.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    # true symbol 0: -log(1 * 1 / (1 * 1 + 3 * 2 + 1 * 1)) = log 8
    value = weighted_cross_entropy(logits, torch.tensor([0]), table)
    assert value.item() == pytest.approx(math.log(8.0), rel=1e-6)
    with pytest.raises(ValueError, match="weight table must be 3x3"):
        weighted_cross_entropy(logits, torch.tensor([0]), torch.ones(4, 4))


def test_official_weight_table_and_loss_value(reference):
    table = official_weight_table(reference["confuse"].numpy())
    assert torch.allclose(table, reference["weight_table"].cpu().float(), rtol=1e-6)
    ce = weighted_cross_entropy(
        reference["sr_logits"], reference["targets"], reference["weight_table"]
    )
    assert ce.item() == pytest.approx(reference["loss_recognition"].item(), rel=1e-4)
    with pytest.raises(ValueError, match="62x62"):
        official_weight_table(np.ones((37, 37)))


def test_official_confusion_file_loads_and_a_malicious_one_is_refused(reference, tmp_path):
    path = tmp_path / "confuse.pkl"
    path.write_bytes(pickle.dumps(reference["confuse"].numpy()))
    assert torch.allclose(load_official_confusion(path), reference["weight_table"].float())

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        load_official_confusion(path)
    assert not (tmp_path / "pwned").exists()


def test_confusion_weights_are_one_on_the_diagonal_and_grow_with_confusion():
    logits = torch.full((6, 3), -5.0)
    predicted = [0, 0, 1, 1, 1, 2]
    targets = torch.tensor([0, 0, 0, 1, 1, 2])
    logits[torch.arange(6), predicted] = 5.0
    counts = confusion_counts(logits, targets, symbols=3)
    assert counts.tolist() == [[2, 1, 0], [0, 2, 0], [0, 0, 1]]
    table = weights_from_confusions(counts, strength=3.0)
    assert torch.equal(table.diagonal(), torch.ones(3))
    assert table[0, 1].item() == pytest.approx(1 + 3.0 / 3)  # 0 read as 1 in a third of cases
    assert table[1, 0].item() == 1.0


def test_full_loss_reproduces_the_official_total(reference, guide):
    loss = TextFocusLoss(guide, reference["weight_table"].float())
    value = loss(reference["sr"], reference["hr"], reference["raw_labels"])
    assert value.item() == pytest.approx(reference["loss_total"].item(), rel=1e-4)
    assert set(loss.last_terms) == {"mse", "position", "content"}
    assert loss.last_terms["position"] == pytest.approx(reference["loss_attention"].item(), 1e-4)


def test_pixel_and_position_terms_vanish_when_sr_equals_hr(reference, guide):
    loss = TextFocusLoss(guide, weights=TextFocusWeights(content=0.0))
    hr = reference["hr"]
    assert loss(hr.clone(), hr, reference["raw_labels"]).item() == pytest.approx(0.0, abs=1e-7)
    assert set(loss.last_terms) == {"mse", "position"}


def test_gradient_reaches_the_sr_image_and_never_the_recognizer(reference, guide):
    loss = TextFocusLoss(guide, weights=TextFocusWeights(scale=100.0))
    loss.train()
    assert not guide.training
    sr = reference["sr"].clone().requires_grad_(True)
    loss(sr, reference["hr"], reference["raw_labels"]).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in guide.parameters())


def test_switched_off_terms_are_not_computed_and_all_off_is_an_error(reference, guide):
    only_mse = TextFocusLoss(guide, weights=TextFocusWeights(position=0.0, content=0.0))
    value = only_mse(reference["sr"], reference["hr"], reference["raw_labels"])
    assert value.item() == pytest.approx(F.mse_loss(reference["sr"], reference["hr"]).item())
    assert set(only_mse.last_terms) == {"mse"}
    nothing = TextFocusLoss(guide, weights=TextFocusWeights(mse=0.0, position=0.0, content=0.0))
    with pytest.raises(ValueError, match="every term"):
        nothing(reference["sr"], reference["hr"], reference["raw_labels"])
    with pytest.raises(ValueError, match="must be >= 0"):
        TextFocusWeights(position=-1.0)


def test_content_term_is_the_weighted_ce_of_the_guide_on_sr(reference, guide):
    table = weights_from_confusions(torch.eye(SYMBOLS) * 5 + 1, strength=2.0)
    loss = TextFocusLoss(guide, table, TextFocusWeights(mse=0.0, position=0.0, content=1.0))
    value = loss(reference["sr"], reference["hr"], reference["raw_labels"])
    length, decoder_input, targets = encode_labels(reference["raw_labels"])
    with torch.no_grad():
        logits = guide(to_recognizer_input(reference["sr"]), length, decoder_input).logits
    assert value.item() == pytest.approx(weighted_cross_entropy(logits, targets, table).item())


def test_term_gradients_report_each_weighted_term_and_sum_to_the_loss_gradient(reference, guide):
    loss = TextFocusLoss(guide, reference["weight_table"].float())
    sr, hr, labels = reference["sr"], reference["hr"], reference["raw_labels"]
    report = loss.term_gradients(sr, hr, labels)
    assert set(report) == {"mse", "position", "content"}
    assert report["position"]["value"] == pytest.approx(
        10 * loss.terms(sr, hr, labels)["position"].item(), 1e-5
    )
    total = sum(row["value"] for row in report.values())
    assert total == pytest.approx(loss(sr, hr, labels).item(), rel=1e-5)
    # the MSE gradient by hand: 2 (sr - hr) / N on the RGB channels, zero on the mask
    expected = (2 * (sr[:, :3] - hr[:, :3]) / sr[:, :3].numel()).norm().item()
    assert report["mse"]["gradient norm"] == pytest.approx(expected, rel=1e-5)
    assert all(p.grad is None for p in guide.parameters())


def test_most_confused_lists_off_diagonal_pairs_by_count():
    counts = torch.zeros(SYMBOLS, SYMBOLS, dtype=torch.long)
    letter_o, zero, letter_l, one = (ALPHABET.index(c) for c in "o0l1")
    counts[letter_o, letter_o], counts[letter_o, zero] = 6, 4  # 'o' read as '0' in 4 of 10
    counts[letter_l, one], counts[letter_l, letter_l] = 1, 1
    assert most_confused(counts, top=5) == [("o", "0", 4, 0.4), ("l", "1", 1, 0.5)]
    with pytest.raises(ValueError, match="must be 37x37"):
        most_confused(torch.zeros(3, 3))


def noisy_sr(reference: dict) -> torch.Tensor:
    """A seeded SR batch: the reference SR images plus a little noise."""
    torch.manual_seed(0)
    return reference["sr"] + 0.05 * torch.randn_like(reference["sr"])


def test_total_and_terms_keep_the_total_and_report_each_term_as_it_enters_it(reference, guide):
    weights = TextFocusWeights(scale=100.0)
    loss = TextFocusLoss(guide, reference["weight_table"].float(), weights)
    sr, hr, labels = noisy_sr(reference), reference["hr"], reference["raw_labels"]
    total, terms = loss.total_and_terms(sr, hr, labels)
    assert torch.equal(total, loss(sr, hr, labels))
    plain = loss.terms(sr, hr, labels)  # the total's expression: scale * (weighted terms, in order)
    expected = weights.scale * (
        weights.mse * plain["mse"]
        + weights.position * plain["position"]
        + weights.content * plain["content"]
    )
    assert torch.equal(total, expected)
    assert list(terms) == ["mse", "position", "content"]
    assert not any(value.requires_grad for value in terms.values())
    assert torch.allclose(sum(terms.values()), total, rtol=1e-6)
    assert terms["position"].item() == pytest.approx(1000 * plain["position"].item(), rel=1e-6)
    ablation = TextFocusLoss(guide, weights=TextFocusWeights(content=0.0))
    assert list(ablation.total_and_terms(sr, hr, labels)[1]) == ["mse", "position"]


class PlainSR(nn.Module):
    """Bicubic plus a learned correction, without randomness in its forward pass."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.correction = nn.Conv2d(3, 3, 3, padding=1)
        self.upscale = Bicubic()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = self.upscale(x)
        return up + self.correction(up)


def test_training_logs_the_text_focus_terms_and_the_total_of_a_direct_call(reference, guide):
    hr, labels = reference["hr"], reference["raw_labels"]
    lr = F.avg_pool2d(hr, 2)
    dataset = [(lr[i], hr[i], labels[i]) for i in range(len(labels))]
    loss = TextFocusLoss(guide, reference["weight_table"].float(), TextFocusWeights(scale=100.0))
    model = PlainSR()
    untrained = copy.deepcopy(model)
    result = train_sr(model, dataset, loss, TrainConfig(steps=3, batch_size=3, seed=1))
    assert list(result.terms) == ["mse", "position", "content"]
    assert all(len(values) == 3 for values in result.terms.values())
    sums = [sum(step) for step in zip(*result.terms.values(), strict=True)]
    assert sums == pytest.approx(result.losses, rel=1e-6)
    order = epoch_order(len(dataset), 1, 0).tolist()  # the first step's batch
    with torch.no_grad():
        direct = loss(untrained(lr[order]), hr[order], [labels[i] for i in order])
    assert result.losses[0] == direct.item()
