"""The guide of the text-focus loss (Scene Text Telescope's recognizer): official sizes, labels,
grayscale input and greedy reading.

The fixtures in ocrsr_lib/official_references (tbsrn_recognizer_small*) were computed by running the
official recognizer and text-focus loss (see the README there); no official code is here.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ocrsr_lib.checkpoints import CheckpointError
from ocrsr_lib.labels import GUIDE_CHARSET
from ocrsr_lib.models import OFFICIAL_REFERENCES, load_official, parameter_count
from ocrsr_lib.models.converting import strip_prefix
from ocrsr_lib.models.guide import (
    ALPHABET,
    RECOGNIZER_CONFIGS,
    RecognizerConfig,
    TextRecognizer,
    encode_labels,
    to_recognizer_input,
    word_positions,
)

FIXTURES = OFFICIAL_REFERENCES
WEIGHTS = FIXTURES / "tbsrn_recognizer_small.pt"
PAPER_PARAMETERS = 62_314_917  # the official 62 314 951 less the unused compress_attention_linear


@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(FIXTURES / "tbsrn_recognizer_small_io.pt", weights_only=True)


@pytest.fixture(scope="module")
def official_small() -> TextRecognizer:
    return load_official("tbsrn-recognizer", WEIGHTS)


def test_alphabet_is_the_official_one():
    assert ALPHABET == "-0123456789abcdefghijklmnopqrstuvwxyz"


def test_official_checkpoint_size_is_inferred(reference, official_small):
    config = reference["config"]
    assert not official_small.training
    assert official_small.config == RecognizerConfig(
        stem_channels=config["stem_channels"],
        stage_channels=config["stage_channels"],
        stage_blocks=config["stage_blocks"],
        width=config["width"],
        heads=config["heads"],
        feed_forward=config["feed_forward"],
        max_positions=config["max_positions"],
    )


def test_output_unpacks_like_the_official_one(reference, official_small):
    """Agreement with the official logits and attention is checked in test_official_weights.py."""
    length, decoder_input = reference["length"], reference["decoder_input"]
    with torch.no_grad():
        output = official_small(to_recognizer_input(reference["hr"]), length, decoder_input)
    logits, attention, _ = output  # unpacks like the official (logits, attention, None)
    assert logits.shape == (int(length.sum()), 37)
    assert attention.shape == (3, 16, decoder_input.shape[1], 8 * 32)


def test_official_text_focus_loss_terms_follow_from_our_outputs(reference, official_small):
    """The official loss's attention and weighted-CE terms, recomputed from our outputs."""
    length, decoder_input = reference["length"], reference["decoder_input"]
    with torch.no_grad():
        hr = official_small(to_recognizer_input(reference["hr"]), length, decoder_input)
        sr = official_small(to_recognizer_input(reference["sr"]), length, decoder_input)
    attention_l1 = F.l1_loss(hr.attention, sr.attention)
    assert abs(attention_l1 - reference["loss_attention"]) < 1e-4 * reference["loss_attention"]
    targets = reference["targets"]
    weighted = reference["weight_table"][targets] * sr.logits.exp()
    ce = -(weighted.gather(1, targets[:, None])[:, 0] / weighted.sum(1)).log().mean()
    assert abs(ce - reference["loss_recognition"]) < 1e-4 * reference["loss_recognition"]
    mse = F.mse_loss(reference["sr"], reference["hr"])
    total = mse + 10 * attention_l1 + 0.0005 * ce
    assert abs(total - reference["loss_total"]) < 1e-5


def test_label_encoding_matches_the_official_encoder(reference):
    length, decoder_input, targets = encode_labels(reference["raw_labels"])
    assert reference["raw_labels"] == ["Hi!", "a1", "Zoom-7"]
    assert torch.equal(length, reference["length"])
    assert torch.equal(decoder_input, reference["decoder_input"])
    assert torch.equal(targets, reference["targets"])


def test_label_encoding_by_hand():
    length, decoder_input, targets = encode_labels(["Ab-1", "z"])
    a, b, one, z = (ALPHABET.index(c) for c in "ab1z")
    assert length.tolist() == [4, 2]
    assert decoder_input.tolist() == [[0, a, b, one], [0, z, 0, 0]]
    assert targets.tolist() == [a, b, one, 0, z, 0]
    assert length.dtype == decoder_input.dtype == targets.dtype == torch.long
    with pytest.raises(ValueError, match="at most 3"):
        encode_labels(["abcd"], max_length=3)
    with pytest.raises(ValueError, match="no labels"):
        encode_labels([])


def test_grayscale_matches_the_official_loss(reference):
    assert torch.allclose(to_recognizer_input(reference["hr"]), reference["hr_gray"], atol=1e-7)
    assert torch.allclose(to_recognizer_input(reference["sr"]), reference["sr_gray"], atol=1e-7)


def test_grayscale_values_mask_channel_and_resizing():
    colours = torch.eye(3)[:, :, None, None].expand(3, 3, 32, 128)  # pure red, green, blue
    gray = to_recognizer_input(colours)
    assert gray.shape == (3, 1, 32, 128)
    assert torch.allclose(gray[:, 0, 0, 0], torch.tensor([0.299, 0.587, 0.114]))
    with_mask = torch.cat([colours, torch.ones(3, 1, 32, 128)], dim=1)
    assert torch.equal(to_recognizer_input(with_mask), gray)
    assert torch.equal(to_recognizer_input(gray), gray)
    small = torch.full((2, 3, 16, 64), 0.5)
    assert torch.allclose(to_recognizer_input(small), torch.full((2, 1, 32, 128), 0.5))
    assert to_recognizer_input(small, size=None).shape == (2, 1, 16, 64)
    with pytest.raises(ValueError, match=r"\(2, 2, 32, 128\)"):
        to_recognizer_input(torch.zeros(2, 2, 32, 128))


def test_forward_refuses_rgb_and_bad_lengths(official_small):
    length, decoder_input, _ = encode_labels(["ab"])
    with pytest.raises(ValueError, match=r"\(1, 3, 32, 128\).*to_recognizer_input"):
        official_small(torch.zeros(1, 3, 32, 128), length, decoder_input)
    with pytest.raises(ValueError, match="1..3"):
        word_positions(torch.tensor([4]), 3)


def test_checkpoint_without_module_prefix_loads_too(tmp_path, official_small):
    state_dict = strip_prefix(torch.load(WEIGHTS, weights_only=True), "module.")
    torch.save(state_dict, tmp_path / "bare.pt")
    model = load_official("tbsrn-recognizer", tmp_path / "bare.pt")
    for key, value in official_small.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


def test_bad_checkpoint_is_refused_with_the_key_names(tmp_path):
    state_dict = dict(torch.load(WEIGHTS, weights_only=True))
    del state_dict["module.decoder.pff.w_2.bias"]
    state_dict["module.decoder.extra.weight"] = torch.zeros(3)
    state_dict["module.generator_word.proj.bias"] = torch.zeros(62)
    torch.save(state_dict, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as error:
        load_official("tbsrn-recognizer", tmp_path / "bad.pt")
    message = str(error.value)
    assert "decoder.pff.w_2.bias" in message and "decoder.extra.weight" in message
    assert "generator_word.proj.bias: model (37,) vs file (62,)" in message
    assert str(tmp_path / "bad.pt") in message


def test_checkpoint_with_another_position_code_is_refused(tmp_path):
    state_dict = dict(torch.load(WEIGHTS, weights_only=True))
    state_dict["module.pe.pe"] = state_dict["module.pe.pe"] + 0.1
    torch.save(state_dict, tmp_path / "pe.pt")
    with pytest.raises(CheckpointError, match=r"'pe\.pe'"):
        load_official("tbsrn-recognizer", tmp_path / "pe.pt")
    del state_dict["module.pe.pe"]
    torch.save(state_dict, tmp_path / "no_pe.pt")
    with pytest.raises(CheckpointError, match=r"'pe\.pe' is missing"):
        load_official("tbsrn-recognizer", tmp_path / "no_pe.pt")


def test_paper_size_has_the_official_tensor_names_and_shapes(reference):
    """The official paper-size key set, less the unused and the recomputed tensors."""
    official = {
        k: v
        for k, v in strip_prefix(reference["paper_shapes"], "module.").items()
        if ".compress_attention_linear." not in k and k != "pe.pe"
    }
    with torch.device("meta"):
        model = TextRecognizer(RECOGNIZER_CONFIGS["paper"])
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == official
    assert tuple(model.pe.pe.shape) == reference["paper_shapes"]["module.pe.pe"]
    assert reference["paper_parameters"] - 2 * (16 + 1) == PAPER_PARAMETERS


def test_paper_size_builds_and_runs_forward_and_backward():
    torch.manual_seed(0)
    model = TextRecognizer(RECOGNIZER_CONFIGS["paper"])
    assert parameter_count(model) == PAPER_PARAMETERS
    length, decoder_input, targets = encode_labels(["ab"])
    output = model(to_recognizer_input(torch.rand(1, 3, 32, 128)), length, decoder_input)
    assert output.logits.shape == (3, 37) and output.word_logits.shape == (1, 3, 37)
    assert output.attention.shape == (1, 16, 3, 256)
    F.cross_entropy(output.logits, targets).backward()
    gradients = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in gradients)


def test_demo_size_attention_is_a_distribution_over_image_positions():
    torch.manual_seed(0)
    model = TextRecognizer(RECOGNIZER_CONFIGS["demo"]).eval()
    length, decoder_input, _ = encode_labels(["hello", "a"])
    with torch.no_grad():
        output = model(torch.rand(2, 1, 32, 128), length, decoder_input)
    assert output.attention.shape == (2, 4, 6, 256)
    assert torch.allclose(output.attention.sum(-1), torch.ones(2, 4, 6), atol=1e-5)
    assert torch.equal(output.logits, torch.cat([output.word_logits[0], output.word_logits[1, :2]]))


class ScriptedRecognizer(TextRecognizer):
    """A hand-made recognizer: image b spells words[b] whatever the pixels."""

    def __init__(self, words: list[str]) -> None:
        tiny = RecognizerConfig((1, 1), (1, 1, 1, 1), (1, 1, 1, 1), 8, 2, 8, max_positions=64)
        super().__init__(tiny)
        self.words = [GUIDE_CHARSET.encode(word) + [GUIDE_CHARSET.end_id] for word in words]
        self.batches: list[int] = []  # rows decoded at each step

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return torch.arange(len(images), dtype=torch.float32)[:, None]  # each row's image

    def decoding_memory(self, features):
        return features, features

    def decode(self, features, decoder_input, memory=None):
        batch, steps = decoder_input.shape
        self.batches.append(batch)
        logits = torch.zeros(batch, steps, len(ALPHABET))
        for row, image in enumerate(features[:, 0].long().tolist()):
            ids = self.words[image]
            fed_back = decoder_input[row, 1:].tolist()  # its own earlier output
            assert fed_back[: len(ids)] == ids[: len(fed_back)]
            for t in range(steps):
                logits[row, t, ids[min(t, len(ids) - 1)]] = 1.0
        return logits, torch.zeros(batch, 1, steps, 1)


def test_greedy_read_of_a_hand_made_recognizer():
    words = ["abc", "", "hello42", "x" * 40]
    model = ScriptedRecognizer(words).train()
    read = model.read(torch.zeros(4, 3, 32, 128), max_length=32)
    assert read == ["abc", "", "hello42", "x" * 32]
    assert model.training  # mode restored
    # a word leaves the batch once it has ended: "" after 1 step, "abc" after 4, "hello42" after 8
    assert model.batches == [4] + [3] * 3 + [2] * 4 + [1] * 24


def test_greedy_read_is_batched_and_agrees_with_teacher_forcing():
    model = load_official("tbsrn-recognizer", WEIGHTS)
    with torch.no_grad():
        model.generator_word.proj.bias[0] += 2.0  # make '-' likely, so that words end early
    images = torch.rand(3, 3, 32, 128, generator=torch.Generator().manual_seed(5))
    batched = model.read(images, max_length=6)
    assert batched == [model.read(image[None], max_length=6)[0] for image in images]
    length, decoder_input, targets = encode_labels(batched)
    with torch.no_grad():
        predicted = model(to_recognizer_input(images), length, decoder_input).logits.argmax(-1)
    # every character read is the teacher-forced argmax, and so is the end of a word that ended
    checked = torch.cat([torch.tensor([True] * len(w) + [len(w) < 6]) for w in batched])
    assert torch.equal(predicted[checked], targets[checked])


def test_decoding_with_the_projected_image_memory_equals_decoding_without_it():
    model = load_official("tbsrn-recognizer", WEIGHTS)
    images = torch.rand(2, 1, 32, 128, generator=torch.Generator().manual_seed(3))
    ids = torch.tensor([[0, 11, 12], [0, 5, 0]])
    with torch.no_grad():
        features = model.encode(images)
        plain = model.decode(features, ids)
        cached = model.decode(features, ids, model.decoding_memory(features))
    assert torch.equal(plain[0], cached[0]) and torch.equal(plain[1], cached[1])
