"""The results chapter's rules and tables: Table 2's selection, paired verdicts, Markdown."""

from ocrsr_lib.results import (
    AcceptanceRule,
    Comparison,
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
    assert smallest_acceptable_bits(REFERENCE, {}) == 8


def test_a_claim_reproduces_with_the_papers_sign_beyond_noise():
    def comparison(points, paper, z):
        return Comparison("a", "b", points, paper, 10, 5, z)

    assert comparison(3.0, 6.9, 2.5).reproduces
    assert not comparison(3.0, 6.9, 1.2).reproduces  # within noise
    assert not comparison(-3.0, 6.9, -2.5).reproduces  # the other way round
    assert comparison(-1.0, -0.5, -2.0).reproduces


def test_markdown_table_has_a_header_an_alignment_row_and_one_line_per_row():
    text = markdown_table(["name", "x"], [["a", 1], ["b", 2.5]])
    assert text.splitlines() == ["| name | x |", "|---|---:|", "| a | 1 |", "| b | 2.5 |"]
