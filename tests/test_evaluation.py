"""Reading and scoring words (sources, accuracy, McNemar), and the guide: its loss, its cached
run, its confusions and attention maps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ocrsr_lib import evaluation
from ocrsr_lib.data import normalize_label
from ocrsr_lib.evaluation import accuracy_table, images_for_reading, word_accuracy
from ocrsr_lib.losses import SYMBOLS
from ocrsr_lib.metrics import evaluate_sr
from ocrsr_lib.models.guide import (
    RECOGNIZER_CONFIGS,
    TextRecognizer,
    attention_maps,
    encode_labels,
    to_recognizer_input,
)
from ocrsr_lib.runs.guide import (
    confusion_weights,
    recognizer_batch_loss,
)
from ocrsr_lib.tables import format_accuracy


def tiny_words(count: int = 8) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
    generator = torch.Generator().manual_seed(0)
    words = ["Cat", "dog!", "a1", "ZOOM", "x", "b-2", "hello", "42"]
    return [
        (
            torch.rand(3, 16, 64, generator=generator),
            torch.rand(3, 32, 128, generator=generator),
            words[i % len(words)],
        )
        for i in range(count)
    ]


class FixedReader(nn.Module):
    """Reads every image as the next word of a fixed list."""

    def __init__(self, answers: list[str]) -> None:
        super().__init__()
        self.answers = answers

    def read(self, images: torch.Tensor) -> list[str]:
        return self.answers[: len(images)]


class BrightnessReader(nn.Module):
    """Reads "cat" where the image is brighter than mid-grey, else "dog": depends on pixels."""

    def read(self, images: torch.Tensor) -> list[str]:
        return ["cat" if image.mean() > 0.5 else "dog" for image in images]


def test_guide_labels_and_accuracy_ignore_case_and_punctuation():
    assert normalize_label("Dog!") == "dog" and normalize_label("b-2") == "b2"
    data = tiny_words(4)  # Cat, dog!, a1, ZOOM
    reader = FixedReader(["cat", "dog", "al", "zoom"])
    assert word_accuracy(reader, data, "hr") == 0.75
    table = accuracy_table(reader, {"easy": data, "hard": data[:2]}, {"HR": "hr"})
    assert table["HR"] == {"easy": 0.75, "hard": 1.0, "average": pytest.approx(5 / 6)}
    with pytest.raises(ValueError, match="unknown image source 'sr'"):
        word_accuracy(reader, data, "sr")


def test_one_sr_pass_reports_what_evaluate_sr_and_accuracy_table_report():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(3, 3, 1))
    model.train()
    splits = {"easy": tiny_words(6), "hard": tiny_words(3)}
    readers = {
        "fixed": FixedReader(["cat", "dog", "a1", "zoom", "y", "b2"]),
        "bright": BrightnessReader(),
    }
    report, accuracy = evaluation.sr_quality_and_accuracy(model, splits, readers)
    expected = evaluate_sr(model, splits, batch_size=2)
    assert report.keys() == expected.keys() == {"easy", "hard", "average"}
    for split, row in expected.items():
        assert report[split] == pytest.approx(row, rel=1e-6)
    for name, reader in readers.items():
        assert accuracy[name] == accuracy_table(reader, splits, {"SR": model})["SR"]
    assert accuracy["fixed"]["easy"] == pytest.approx(5 / 6)  # "y" is not "x"
    assert model.training  # its mode is restored
    with pytest.raises(ValueError, match="empty split"):
        evaluation.sr_quality_and_accuracy(model, {"easy": []}, readers)


def test_images_for_reading_upscale_lr_and_run_models():
    lr, hr = torch.rand(2, 3, 16, 64), torch.rand(2, 3, 32, 128)
    assert images_for_reading(lr, hr, "hr") is hr
    pixels = images_for_reading(lr, hr, "lr")
    assert pixels.shape == hr.shape
    assert torch.equal(pixels[..., ::2, ::2], lr) and torch.equal(pixels[..., 1::2, 1::2], lr)
    smooth = images_for_reading(lr, hr, "bicubic")
    assert smooth.shape == hr.shape and not torch.equal(smooth, pixels)
    doubled = images_for_reading(lr, hr, nn.Upsample(scale_factor=2))
    assert torch.equal(doubled, F.interpolate(lr, scale_factor=2))


def test_recognizer_loss_is_teacher_forced_cross_entropy_and_training_lowers_it():
    torch.manual_seed(0)
    model = TextRecognizer(RECOGNIZER_CONFIGS["demo"]).eval()  # dropout off: deterministic
    data = tiny_words()
    lr, hr, labels = (
        torch.stack([d[0] for d in data]),
        torch.stack([d[1] for d in data]),
        [d[2] for d in data],
    )
    loss = recognizer_batch_loss()(model, (lr, hr, labels), torch.device("cpu"))
    length, decoder_input, targets = encode_labels(labels)
    logits = model(to_recognizer_input(hr), length, decoder_input).logits
    assert loss.item() == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-5)
    before = recognizer_batch_loss()(model, (lr, hr, labels), torch.device("cpu")).item()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(20):
        optimizer.zero_grad()
        recognizer_batch_loss()(model, (lr, hr, labels), torch.device("cpu")).backward()
        optimizer.step()
    after = recognizer_batch_loss()(model, (lr, hr, labels), torch.device("cpu")).item()
    assert after < before


def test_confusion_weights_count_every_character_and_end_token():
    torch.manual_seed(0)
    model = TextRecognizer(RECOGNIZER_CONFIGS["demo"])
    data = tiny_words()
    counts, table = confusion_weights(model, data, "bicubic", strength=2.0)
    characters = sum(len(normalize_label(word)) + 1 for _, _, word in data)
    assert counts.shape == (SYMBOLS, SYMBOLS) and counts.sum().item() == characters
    assert torch.equal(table.diagonal(), torch.ones(SYMBOLS))
    assert table.min() >= 1.0 and table.max() <= 3.0


def test_attention_maps_are_per_character_distributions_on_the_feature_grid():
    torch.manual_seed(0)
    model = TextRecognizer(RECOGNIZER_CONFIGS["demo"])
    maps = attention_maps(model, torch.rand(2, 3, 32, 128), ["ab", "hello"])
    assert maps.shape == (2, 6, 8, 32)  # longest word + end token, a quarter of 32x128
    assert torch.allclose(maps.sum(dim=(2, 3)), torch.ones(2, 6), atol=1e-5)
    assert not model.training


def test_format_accuracy_prints_percentages_per_row_and_column():
    text = format_accuracy(
        {"HR": {"easy": 0.5, "average": 0.25}, "bicubic": {"easy": 0.125, "average": 0.0}}
    )
    lines = text.splitlines()
    assert lines[0].split() == ["images", "easy", "average"]
    assert lines[1].split() == ["HR", "50.0%", "25.0%"]
    assert lines[2].split() == ["bicubic", "12.5%", "0.0%"]
    partial = format_accuracy({"paper": {"easy": 0.5, "average": 0.6}, "bicubic": {"average": 0.4}})
    assert partial.splitlines()[2].split() == ["bicubic", "-", "40.0%"]


def test_accuracy_of_scores_as_textzoom_and_refuses_unequal_lengths():
    assert evaluation.accuracy_of(["hello", "w0rld"], ["Hello!", "World"]) == 0.5
    with pytest.raises(ValueError, match="2 words read for 1 labels"):
        evaluation.accuracy_of(["a", "b"], ["a"])


def test_paired_difference_counts_disagreements_and_mcnemars_z():
    labels = ["a", "b", "c", "d", "e"]
    first, second = ["a", "b", "c", "x", "x"], ["a", "x", "x", "x", "e"]
    assert evaluation.paired_difference(first, second, labels) == (2, 1, pytest.approx(1 / 3**0.5))
    assert evaluation.paired_difference(labels, labels, labels) == (0, 0, 0.0)
    with pytest.raises(ValueError, match="5 and 4 words read for 5 labels"):
        evaluation.paired_difference(first, second[:4], labels)


def test_character_marks_compare_place_by_place():
    assert evaluation.character_marks("hallo", "Hello!") == [True, False, True, True, True]
    assert evaluation.character_marks("hello1", "hello") == [True] * 5 + [False]
    assert evaluation.character_marks("", "abc") == []
