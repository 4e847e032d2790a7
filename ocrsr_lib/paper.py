"""The paper's published numbers, printed beside the book's own (never used as results)."""

from __future__ import annotations

# Table 1: word accuracy (%) on TextZoom's test sets, easy / medium / hard / average
PAPER_TABLE_1: dict[str, dict[str, float]] = {
    "TBSRN + CDistNet (HR-fine-tuned)": {
        "easy": 80.48,
        "medium": 64.99,
        "hard": 50.63,
        "average": 65.37,
    },
    "TBSRN + CDistNet (SR-fine-tuned)": {
        "easy": 84.19,
        "medium": 69.81,
        "hard": 55.55,
        "average": 69.85,
    },
    "EDSR + CDistNet (HR-fine-tuned)": {
        "easy": 79.74,
        "medium": 63.22,
        "hard": 49.59,
        "average": 64.18,
    },
    "EDSR + CDistNet (SR-fine-tuned)": {
        "easy": 85.05,
        "medium": 71.37,
        "hard": 56.81,
        "average": 71.08,
    },
    "bicubic + CDistNet (fine-tuned)": {"average": 61.47},  # per difficulty not published
}


def as_fractions(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """A published table in percent as fractions, the unit the book's accuracy tables use."""
    return {
        row: {column: value / 100 for column, value in cells.items()}
        for row, cells in table.items()
    }
