"""The paper's published numbers, as the book prints them beside its own."""

import pytest

from ocrsr_lib.paper import PAPER_TABLE_1, as_fractions


def test_table_1_averages_are_the_published_ones_and_convert_to_fractions():
    averages = {row: cells["average"] for row, cells in PAPER_TABLE_1.items()}
    assert averages["EDSR + CDistNet (SR-fine-tuned)"] == 71.08
    assert averages["bicubic + CDistNet (fine-tuned)"] == 61.47
    fractions = as_fractions(PAPER_TABLE_1)
    assert fractions["TBSRN + CDistNet (HR-fine-tuned)"]["easy"] == pytest.approx(0.8048)
    assert set(fractions["bicubic + CDistNet (fine-tuned)"]) == {"average"}
