"""Progress bars that stay cheap: at most one update a second, and off with OCRSR_PROGRESS=0.

In a notebook every update is a kernel message. Thousands of them during a long cell
overflow the kernel's message queue, so a test runner such as nbval can lose the cell's
final status message. The book's build and tests switch bars off; interactive users see them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from tqdm.auto import tqdm

PROGRESS_ENV = "OCRSR_PROGRESS"


def progress_enabled() -> bool:
    """False when OCRSR_PROGRESS is 0, false or off."""
    return os.environ.get(PROGRESS_ENV, "1").strip().lower() not in ("0", "false", "off")


def progress_bar(*args, disable: bool = False, **kwargs) -> tqdm:
    """A tqdm bar with a one-second minimum update interval, honouring OCRSR_PROGRESS."""
    kwargs.setdefault("mininterval", 1.0)
    return tqdm(*args, disable=disable or not progress_enabled(), **kwargs)


def progress_updater(bar: tqdm) -> Callable[[int, int], None]:
    """A `progress(done, total)` callback that moves `bar` (for loops that report counts)."""

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update
