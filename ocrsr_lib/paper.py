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

# Table 2, per SR model and quantized part ("none", "sr", "ocr", "sr+ocr"): the bit width the
# paper chose, average PSNR (dB), average word accuracy (%) and "model size (MB)", which matches
# megabits (10^6 bits) of the parameters at their bit widths
PAPER_TABLE_2: dict[str, dict[str, dict[str, float | None]]] = {
    "TBSRN": {
        "none": {"bits": None, "psnr": 21.15, "accuracy": 69.85, "size": 2190.08},
        "sr": {"bits": 4, "psnr": 21.15, "accuracy": 70.35, "size": 2108.64},
        "ocr": {"bits": 5, "psnr": 21.15, "accuracy": 69.38, "size": 1065.89},
        "sr+ocr": {"bits": 6, "psnr": 21.12, "accuracy": 69.85, "size": 1031.90},
    },
    "EDSR": {
        "none": {"bits": None, "psnr": 21.42, "accuracy": 71.08, "size": 3457.40},
        "sr": {"bits": 4, "psnr": 21.23, "accuracy": 70.23, "size": 2331.32},
        "ocr": {"bits": 5, "psnr": 21.42, "accuracy": 70.57, "size": 2333.21},
        "sr+ocr": {"bits": 7, "psnr": 21.41, "accuracy": 71.28, "size": 1329.20},
    },
}

# TextZoom's test PSNR (dB) of bicubic upscaling, as the TextZoom (TSRN) paper reports it
TEXTZOOM_BICUBIC_PSNR: dict[str, float] = {"easy": 22.35, "medium": 18.98, "hard": 19.39}


def as_fractions(table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """A published table in percent as fractions, the unit the book's accuracy tables use."""
    return {
        row: {column: value / 100 for column, value in cells.items()}
        for row, cells in table.items()
    }
