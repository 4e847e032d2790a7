"""The results chapter's rules and tables: Table 2's selection, paired verdicts, Markdown."""

import pytest
import torch

from ocrsr_lib import results
from ocrsr_lib.results import (
    AcceptanceRule,
    markdown_table,
    smallest_acceptable_bits,
)


def evaluation(accuracy: float, psnr: float) -> dict:
    return {"accuracy": {"average": accuracy}, "psnr": psnr}


REFERENCE = evaluation(0.70, 20.0)


def test_the_rule_accepts_up_to_one_point_and_a_tenth_of_a_db():
    rule = AcceptanceRule()
    assert rule.accepts(REFERENCE, evaluation(0.69, 19.9))
    assert not rule.accepts(REFERENCE, evaluation(0.689, 20.0))
    assert not rule.accepts(REFERENCE, evaluation(0.70, 19.89))
    assert rule.accepts(REFERENCE, evaluation(0.75, 21.0))  # better is fine


def test_smallest_acceptable_bits_takes_the_fewest_accepted_width():
    sweep = {
        ("sr+ocr", "aciq-mix", 8): evaluation(0.70, 20.0),
        ("sr+ocr", "aciq-mix", 5): evaluation(0.695, 19.95),
        ("sr+ocr", "aciq-mix", 4): evaluation(0.60, 19.0),
        ("sr+ocr", "minmax", 3): evaluation(0.70, 20.0),  # another method does not count
        ("sr", "aciq-mix", 2): evaluation(0.70, 20.0),  # nor another target
    }
    assert smallest_acceptable_bits(REFERENCE, sweep) == 5
    assert smallest_acceptable_bits(REFERENCE, sweep, method="minmax") == 3
    strict = AcceptanceRule(accuracy_points=0.1, psnr_db=0.01)
    assert smallest_acceptable_bits(REFERENCE, sweep, rule=strict) == 8
    assert smallest_acceptable_bits(REFERENCE, {}) is None  # nothing accepted: no silent 8
    lossy = {("sr+ocr", "aciq-mix", bits): evaluation(0.5, 19.0) for bits in range(2, 9)}
    assert smallest_acceptable_bits(REFERENCE, lossy) is None


def recorded_evaluations(monkeypatch, accuracies: dict) -> list:
    """Replace results.evaluate_setting by one that records its calls and answers from
    `accuracies` ((target, bits, data) -> accuracy; PSNR always 20 dB)."""
    calls = []

    def evaluate(session, setting, pipeline, beam=1, words=None, data="test"):
        calls.append((setting.target, setting.bits, beam, data, pipeline.sr))
        key = (setting.target, None if setting.target == "none" else setting.bits, data)
        result = evaluation(accuracies.get(key, 0.0), 20.0)
        return {**result, "megabits": 8.0, "running_megabits": 6.0, "megabytes": 1.0}

    monkeypatch.setattr(results, "evaluate_setting", evaluate)
    monkeypatch.setattr(results, "progress_bar", lambda items, desc: items)
    return calls


def test_bit_widths_are_chosen_on_validation_words_only(monkeypatch):
    accuracies = {("none", None, "validation"): 0.70, ("sr", 4, "validation"): 0.695}
    accuracies |= {("ocr", bits, "validation"): 0.70 for bits in (8, 7, 6)}
    accuracies |= {("sr+ocr", 2, "test"): 0.70}  # test is never looked at
    calls = recorded_evaluations(monkeypatch, accuracies)
    chosen = results.chosen_bit_widths(None, results.EDSR_PIPELINE)
    assert chosen == {"sr": 4, "ocr": 6, "sr+ocr": None}
    assert calls and all(data == "validation" for *_, data, _ in calls)
    assert {bits for target, bits, *_ in calls if target == "sr"} == set(range(2, 9))


def test_table_2_has_eight_rows_read_on_test_with_beam_10_and_says_when_none_passes(monkeypatch):
    accuracies = {("none", None, "validation"): 0.70, ("sr", 5, "validation"): 0.70}
    accuracies |= {("ocr", 8, "validation"): 0.70, ("ocr", 3, "validation"): 0.70}
    calls = recorded_evaluations(monkeypatch, accuracies)
    rows = results.table_2(None)
    assert [(row.model, row.target, row.bits) for row in rows] == [
        (model, target, bits)
        for model in ("TBSRN", "EDSR")
        for target, bits in (("none", None), ("sr", 5), ("ocr", 3), ("sr+ocr", None))
    ]
    assert all(row.result is None for row in rows if row.target == "sr+ocr")
    assert (
        rows[1].name == "TBSRN + CDistNet, SR" and rows[4].name == "EDSR + CDistNet, not quantized"
    )
    test_calls = [call for call in calls if call[3] == "test"]
    assert sorted(call[:3] for call in test_calls) == sorted(
        [("none", 8, 10), ("sr", 5, 10), ("ocr", 3, 10)] * 2
    )
    text = results.table_2_markdown(rows)
    assert text.count("none accepted") == 2 and "EDSR + CDistNet, SR+OCR | none accepted" in text
    assert "| 7 | 21.41 | 71.28 | 1329.20 |" in text  # the paper's row beside ours


def test_markdown_table_has_a_header_an_alignment_row_and_one_line_per_row():
    text = markdown_table(["name", "x"], [["a", 1], ["b", 2.5]])
    assert text.splitlines() == ["| name | x |", "|---|---:|", "| a | 1 |", "| b | 2.5 |"]


def test_quantization_claims_compare_the_papers_widths_with_float_on_the_same_words(monkeypatch):
    labels = ["ab", "cd", "ef", "gh"]
    float_words = {"easy": ["ab", "cd"], "medium": ["x"], "hard": ["gh"]}
    better_words = {"easy": ["ab", "cd"], "medium": ["ef"], "hard": ["gh"]}
    calls = []

    def evaluate(session, setting, pipeline, beam=1, words=None, data="test"):
        calls.append((pipeline.sr, setting.target, setting.bits, beam, data))
        quantized = setting.target != "none"
        return {
            "readings": better_words if quantized else float_words,
            "psnr_per_image": [20.0, 21.0, 22.0, 23.0]
            if not quantized
            else [20.0, 21.1, 21.9, 23.0],
        }

    monkeypatch.setattr(results, "evaluate_setting", evaluate)
    monkeypatch.setattr(results, "scored_labels", lambda session: labels)
    claims = results.quantization_claims(None)
    assert [claim.statement for claim in claims] == [
        "EDSR + CDistNet, SR+OCR 7-bit: accuracy at least float's",
        "TBSRN + CDistNet, SR 4-bit: accuracy at least float's",
        "EDSR + CDistNet, SR 4-bit: PSNR barely moves",
        "TBSRN + CDistNet, SR+OCR 6-bit: PSNR barely moves",
    ]
    assert claims[0].ours.difference == pytest.approx(25.0) and claims[0].verdict == "reproduces"
    assert claims[0].paper == pytest.approx(0.20) and claims[1].paper == pytest.approx(0.50)
    assert claims[2].ours.difference == pytest.approx(0.0, abs=1e-6)
    assert claims[2].paper == pytest.approx(-0.19) and claims[3].unit == "dB"
    assert all(beam == 10 and data == "test" for *_, beam, data in calls)
    assert ("tbsrn-text-focus", "sr+ocr", 6, 10, "test") in calls


def test_table_1_claims_pair_each_row_with_the_papers_difference(monkeypatch):
    labels = ["a", "b", "c", "d"]
    rows = {
        "EDSR + CDistNet (SR-fine-tuned)": ["a", "b", "c", "d"],
        "EDSR + CDistNet (HR-fine-tuned)": ["a", "b", "x", "x"],
        "TBSRN + CDistNet (SR-fine-tuned)": ["a", "x", "x", "x"],
        "TBSRN + CDistNet (HR-fine-tuned)": ["a", "x", "x", "x"],
        results.BICUBIC_ROW: ["x", "x", "x", "x"],
    }
    monkeypatch.setattr(results, "scored_labels", lambda session: labels)
    monkeypatch.setattr(results, "table_1_readings", lambda session, row: rows[row])
    monkeypatch.setattr(
        results,
        "cdistnet_readings",
        lambda *args: {"easy": ["a", "x"], "medium": ["x"], "hard": ["x"]},
    )
    monkeypatch.setattr(
        results, "sr_psnr", lambda session, pipeline: torch.tensor([20.0, 20.5, 21.0, 21.5])
    )
    claims = results.table_1_claims(None)
    assert len(claims) == 10
    first = claims[0]
    assert first.statement == "EDSR: SR-fine-tuned beats HR-fine-tuned CDistNet"
    assert first.ours.difference == pytest.approx(50.0) and first.paper == pytest.approx(6.90)
    assert claims[3].paper is None  # same reader on SR and bicubic: no paper number
    assert claims[-1].unit == "dB" and claims[-1].verdict == "within noise"  # identical PSNR
    assert claims[-1].paper == pytest.approx(0.27)
