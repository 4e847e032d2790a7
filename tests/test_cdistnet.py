"""CDistNet reproduces the official model: logits, decoding, label encoding, sizes.

The fixtures ocrsr_lib/official_references/cdistnet_small* were computed by running the official
CDistNet code on a reduced-width model (see the README there); no official code is here.
"""

from __future__ import annotations

import pytest
import torch

from ocrsr_lib.checkpoints import CheckpointError
from ocrsr_lib.models import OFFICIAL_REFERENCES, create_model, load_official, parameter_count
from ocrsr_lib.models.cdistnet import (
    CDISTNET_CONFIGS,
    END,
    START,
    VOCABULARY,
    CDistNet,
    beam_search,
    cdistnet_from_state_dict,
    encode_targets,
    ids_to_text,
    read_words,
    to_cdistnet_input,
)

FIXTURES = OFFICIAL_REFERENCES
WEIGHTS = FIXTURES / "cdistnet_small.pt"


@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(FIXTURES / "cdistnet_small_io.pt", weights_only=True)


@pytest.fixture(scope="module")
def official_small() -> CDistNet:
    return load_official("cdistnet", WEIGHTS, heads=4)


def relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return ((ours - theirs).norm() / theirs.norm()).item()


def test_logits_come_flat_as_officially_or_per_word(reference, official_small):
    """Agreement with the official logits is checked in test_official_weights.py."""
    with torch.no_grad():
        logits = official_small(reference["images"], reference["tgt"])
        per_word = official_small(reference["images"], reference["tgt"], flat=False)
    batch, length = reference["tgt"].shape
    assert logits.shape == (batch * (length - 1), len(VOCABULARY)) == (33, 40)
    assert torch.equal(per_word.reshape(-1, 40), logits)


def test_rectifier_points_match_the_official_intermediate(reference, official_small):
    network = official_small.visual_branch.transform.LocalizationNetwork
    with torch.no_grad():
        points = network(reference["images"])
    assert relative_error(points, reference["intermediates"]["tps_ctrl_pts"]) < 1e-5


def test_greedy_and_beam_search_read_what_the_official_translator_reads(reference, official_small):
    # scores (summed log-probabilities) within 1e-3: the official float32 TPS grid's rounding
    # moves them by up to ~4e-4 between CPU instruction sets (see the fixture's notes)
    greedy = beam_search(official_small, reference["images"], beam_size=1)
    assert [r.ids for r in greedy] == reference["greedy_ids"]
    assert [r.text for r in greedy] == reference["greedy_strings"]
    assert [r.score for r in greedy] == pytest.approx(reference["greedy_scores"], abs=1e-3)
    beam = beam_search(official_small, reference["images"], beam_size=10)
    assert [r.ids for r in beam] == reference["beam10_best_ids"]
    assert [r.text for r in beam] == reference["beam10_best_strings"]
    assert [r.score for r in beam] == pytest.approx(reference["beam10_best_scores"], abs=1e-3)
    three = beam_search(official_small, reference["images"], beam_size=3)
    assert [r.ids for r in three] == [ids[0] for ids in reference["beam3"]["ids"]]
    assert greedy[1].text != beam[1].text  # the fixture is one where beam search matters


@pytest.mark.parametrize("beam_size", [1, 3, 10])
def test_an_unseen_image_decodes_alone_as_officially(reference, official_small, beam_size):
    unseen = reference["unseen"]
    (reading,) = beam_search(official_small, unseen["images"], beam_size)
    expected = unseen[f"beam{beam_size}"]
    assert reading.ids == expected["ids"][0][0]  # image 0, best hypothesis
    assert reading.score == pytest.approx(expected["scores"][0][0], abs=1e-4)


def test_labels_become_official_targets(reference):
    assert torch.equal(encode_targets(reference["labels_raw"]), reference["tgt"])
    assert encode_targets(["a" * 40]).shape == (1, 32)  # <s>, 30 characters, </s>
    assert ids_to_text([21, 18, END, 25, 0]) == "he" + "l" + "?"


def test_images_in_zero_one_become_the_official_input(reference):
    images = reference["images_raw_uint8"].float() / 255
    assert torch.allclose(to_cdistnet_input(images), reference["images"], atol=1e-6)
    with_mask = torch.cat([images, torch.ones(3, 1, 32, 128)], dim=1)
    assert torch.equal(to_cdistnet_input(with_mask), to_cdistnet_input(images))
    assert to_cdistnet_input(torch.zeros(2, 3, 16, 64)).shape == (2, 3, 32, 128)
    with pytest.raises(ValueError, match=r"expected RGB images"):
        to_cdistnet_input(torch.zeros(2, 1, 32, 128))


def test_paper_model_has_the_official_names_shapes_and_size(reference):
    model = CDistNet(CDISTNET_CONFIGS["paper"])
    assert parameter_count(model) == reference["paper_n_params"] == 65_459_272
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    official = {k: tuple(v) for k, v in reference["paper_key_shapes"].items()}
    computed = {k for k in official if k.endswith((".pe", ".inv_delta_C", ".P_hat"))}
    assert len(computed) == 6
    assert ours == {k: v for k, v in official.items() if k not in computed}
    buffers = dict(model.named_buffers())
    assert all(tuple(buffers[k].shape) == official[k] for k in computed)


def test_paper_model_trains_a_step_on_the_cpu_and_unused_weights_get_no_gradient(reference):
    torch.manual_seed(0)
    model = CDistNet(CDISTNET_CONFIGS["paper"]).train()
    images = to_cdistnet_input(torch.rand(2, 3, 32, 128))
    tgt = encode_targets(["sign", "exit42"])
    logits = model(images, tgt)
    loss = torch.nn.functional.cross_entropy(logits, tgt[:, 1:].reshape(-1), ignore_index=0)
    loss.backward()
    unused = set(reference["paper_unused_param_names"])
    for name, parameter in model.named_parameters():
        if name in unused:
            assert parameter.grad is None, name
        else:
            assert parameter.grad is not None, name
    assert sum(p.numel() for n, p in model.named_parameters() if n in unused) == 18_935_808


def test_demo_model_reads_rgb_images_in_zero_one():
    torch.manual_seed(0)
    model = CDistNet(CDISTNET_CONFIGS["demo"])
    words = read_words(model, torch.rand(3, 3, 32, 128), beam_size=2, max_steps=6)
    assert len(words) == 3 and all(len(w) <= 6 for w in words)  # untrained: rarely ends
    assert model.training  # mode restored
    with pytest.raises(ValueError, match="beam size must be at least 1"):
        beam_search(model, torch.zeros(1, 3, 32, 128), beam_size=0)


def test_stored_computed_buffers_are_checked_and_missing_keys_refused(official_small):
    complete = {**official_small.state_dict(), **dict(official_small.named_buffers())}
    with_prefix = {f"module.{k}": v for k, v in complete.items()}
    model = cdistnet_from_state_dict(with_prefix, "file", heads=4)
    assert torch.equal(model.tgt_word_prj.weight, official_small.tgt_word_prj.weight)
    bent = dict(complete)
    bent["visual_branch.transform.GridGenerator.P_hat"] = (
        complete["visual_branch.transform.GridGenerator.P_hat"] + 0.1
    )
    with pytest.raises(CheckpointError, match="P_hat.*differs"):
        cdistnet_from_state_dict(bent, "file", heads=4)
    missing = {k: v for k, v in complete.items() if k != "mdcdp.dynamic_shared_fusion.w_att.bias"}
    with pytest.raises(CheckpointError, match="w_att.bias"):
        cdistnet_from_state_dict(missing, "file", heads=4)


def test_decoding_step_by_step_with_the_cache_equals_the_full_decoder():
    """Every attention over the decoded sequence is causal, so caching the earlier positions'
    keys and values changes nothing: each step's logits equal the full decoder's last ones,
    with a PAD input (which a beam may pick) masked as the full decoder masks it."""
    from ocrsr_lib.models.cdistnet import PAD, DecodeCache

    torch.manual_seed(0)
    model = create_model("cdistnet", "demo").eval()
    images = to_cdistnet_input(torch.rand(3, 3, 32, 128))
    ids = torch.tensor([[START, 14, 21, 15], [START, PAD, 6, 7], [START, 30, 31, 32]])
    with torch.no_grad():
        visual = model.mdcdp.visual_memory(model.visual_branch(images))
        cache = DecodeCache.empty(len(model.mdcdp.layers_pos))
        for length in range(1, ids.shape[1] + 1):
            step = model.decode_step(visual, ids[:, length - 1], cache)
            full = model.decode(visual, ids[:, :length])[:, -1]
            assert cache.length == length
            torch.testing.assert_close(step, full, rtol=1e-5, atol=1e-5)
        assert cache.padding.tolist() == ids.eq(PAD).tolist()
        kept = cache.select(torch.tensor([2, 1]))  # rows follow the beams kept, in order
        assert kept.positions[0][0].shape == (4, 2, 128)
        assert torch.equal(kept.semantic[1][1][:, 0], cache.semantic[1][1][:, 2])
        assert kept.padding.tolist() == ids[[2, 1]].eq(PAD).tolist()


def test_beams_of_an_image_share_its_visual_keys_and_values_over_several_steps():
    """Two images x three beams with different inputs per beam: decoding with the visual keys
    shared per image equals decoding with a copy per beam and the full decoder, step by step."""
    from ocrsr_lib.models.cdistnet import DecodeCache

    torch.manual_seed(1)
    model = create_model("cdistnet", "demo").eval()
    images = to_cdistnet_input(torch.rand(2, 3, 32, 128))
    ids = torch.tensor(  # rows: image 0 beams 0-2, image 1 beams 0-2
        [
            [START, 14, 21],
            [START, 5, 6],
            [START, 30, 9],
            [START, 7, 7],
            [START, 8, 12],
            [START, 4, 33],
        ]
    )
    with torch.no_grad():
        visual = model.mdcdp.visual_memory(model.visual_branch(images))
        repeated = [(k.repeat_interleave(3, 1), v.repeat_interleave(3, 1)) for k, v in visual]
        shared_cache, apart_cache = DecodeCache.empty(3), DecodeCache.empty(3)
        for length in range(1, ids.shape[1] + 1):
            shared = model.decode_step(visual, ids[:, length - 1], shared_cache, beams=3)
            apart = model.decode_step(repeated, ids[:, length - 1], apart_cache)
            full = model.decode(repeated, ids[:, :length])[:, -1]
            torch.testing.assert_close(shared, apart, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(shared, full, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(shared[0], shared[1])  # the beams did differ
