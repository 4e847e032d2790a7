"""Benchmark figures recorded on machines the book does not run on (a lent GPU), read from the
Markdown files in benchmarks/results so that the book computes with them rather than copying."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
ROW = re.compile(r"^\|\s*(?P<name>[^|]+?)\s*\|\s*(?P<value>[-+]?\d[\d,]*(?:\.\d+)?)\s*\|")


def recorded_rates(path: Path, section: str | None = None) -> dict[str, float]:
    """The rows (measurement, number, ...) of a recorded benchmark table, in file order; only
    those under the `## ` heading containing `section` when given. No rows is an error."""
    rates, inside = {}, section is None
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            inside = section is None or section in line
        match = ROW.match(line)
        if inside and match:
            rates[match["name"]] = float(match["value"].replace(",", ""))
    if not rates:
        where = f" under a heading with {section!r}" if section else ""
        raise ValueError(f"{path} holds no benchmark rows (| measurement | number |){where}")
    return rates


def recorded_machine(path: Path) -> str:
    """The file's first heading, which names the machine and date of the recording."""
    for line in path.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    raise ValueError(f"{path} does not say which machine it was recorded on (no '# ' heading)")
