"""Figures for the book: image grids and small, readable plots."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

BOOK_STYLE = {"figure.dpi": 72, "savefig.dpi": 72, "font.size": 9, "axes.titlesize": 9}


def use_book_style() -> None:
    """Small figures, so executed notebooks stay light."""
    plt.rcParams.update(BOOK_STYLE)


def to_array(image: torch.Tensor | Image.Image | np.ndarray) -> np.ndarray:
    """An image as an HxWx3 array for imshow (tensors are CxHxW in [0, 1])."""
    if isinstance(image, torch.Tensor):
        return image[:3].detach().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
    return np.asarray(image)


def image_grid(
    rows: Sequence[Sequence[torch.Tensor | Image.Image | np.ndarray]],
    row_titles: Sequence[str] | None = None,
    column_titles: Sequence[str] | None = None,
    cell_size: tuple[float, float] = (1.6, 0.5),
) -> plt.Figure:
    """A grid of images without axes; each image is stretched to its cell like TextZoom's 4:1."""
    n_rows, n_columns = len(rows), max(len(r) for r in rows)
    figure, axes = plt.subplots(
        n_rows,
        n_columns,
        figsize=(cell_size[0] * n_columns, cell_size[1] * n_rows + 0.3),
        squeeze=False,
    )
    for r, row in enumerate(rows):
        for c in range(n_columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            for spine in axis.spines.values():
                spine.set_visible(False)
            if c < len(row):
                axis.imshow(to_array(row[c]), aspect="auto", interpolation="nearest")
            if row_titles is not None and c == 0:
                axis.set_ylabel(row_titles[r], rotation=0, ha="right", va="center")
            if column_titles is not None and r == 0:
                axis.set_title(column_titles[c])
    figure.tight_layout(pad=0.2)
    return figure


def moving_average(values: Sequence[float], window: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, means) of a training curve averaged over `window` steps, the window shortened to
    the run's length, so short runs still plot; `steps` counts from 1 at each window's end."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values)))
    means = np.convolve(values, np.ones(window) / window, mode="valid")
    return np.arange(window, len(values) + 1), means


RIGHT_COLOUR, WRONG_COLOUR = "#1a9850", "#d73027"  # green, red


def marked_word(
    axis: plt.Axes, word: str, marks: Sequence[bool], y: float = -0.28, fontsize: int = 11
) -> list[plt.Text]:
    """Write a reading under an image axis, each character green if right and red if wrong
    (Figure 2's style); an empty reading is shown as a red "(nothing)"."""
    if len(marks) != len(word):
        raise ValueError(f"{len(marks)} marks for the {len(word)} characters of {word!r}")
    if not word:
        text = axis.text(
            0.5,
            y,
            "(nothing)",
            color=WRONG_COLOUR,
            ha="center",
            transform=axis.transAxes,
            fontsize=fontsize,
        )
        return [text]
    step = min(0.9 / len(word), 0.08)
    left = 0.5 - step * (len(word) - 1) / 2
    return [
        axis.text(
            left + i * step,
            y,
            character,
            color=RIGHT_COLOUR if right else WRONG_COLOUR,
            ha="center",
            transform=axis.transAxes,
            family="monospace",
            fontsize=fontsize,
        )
        for i, (character, right) in enumerate(zip(word, marks, strict=True))
    ]
