"""Tables as text: accuracy and SR-metric tables in plain text for printed outputs, Markdown
pipe tables for the results chapter and `ocrsr report`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence


def format_accuracy(table: Mapping[str, Mapping[str, float]], label: str = "images") -> str:
    """An accuracy table (rows, then columns such as splits) as plain text in percent; a value
    a row lacks (the paper publishes only some) is printed as a dash."""
    columns = list(dict.fromkeys(column for row in table.values() for column in row))
    width = max(len(label), *(len(row) for row in table)) + 2
    lines = [f"{label:{width}s}" + "".join(f"{column:>10s}" for column in columns)]
    for name, row in table.items():
        cells = (f"{100 * row[c]:9.1f}%" if c in row else f"{'-':>10s}" for c in columns)
        lines.append(f"{name:{width}s}" + "".join(cells))
    return "\n".join(lines)


def format_report(reports: Mapping[str, Mapping[str, Mapping[str, float]]], metric: str) -> str:
    """Several models' reports as a plain-text table: a row per model, a column per split."""
    splits = list(next(iter(reports.values())))
    lines = [f"{'model':24s}" + "".join(f"{split:>10s}" for split in splits)]
    for model_name, report in reports.items():
        values = "".join(f"{report[split][metric]:10.4g}" for split in splits)
        lines.append(f"{model_name:24s}" + values)
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A Markdown pipe table (first column left-aligned, the others right-aligned)."""
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def format_evaluation(report: Mapping[str, Mapping[str, float]]) -> str:
    """One report as a plain-text table: a row per split with PSNR (dB), SSIM and image count."""
    lines = [f"{'split':12s}{'PSNR':>9s}{'SSIM':>9s}{'images':>9s}"]
    for split, row in report.items():
        lines.append(f"{split:12s}{row['psnr']:9.2f}{row['ssim']:9.4f}{int(row['images']):9d}")
    return "\n".join(lines)


def sweep_table(sweep: Mapping[tuple[str, str, int], Mapping]) -> str:
    """A quantization sweep as plain text: a row per (target, method, bits) with PSNR (dB),
    accuracy per split read (test difficulties or validation) and average (%), size (Mbit) and
    the largest relative weight error."""
    first = next(iter(sweep.values()), {"accuracy": {"average": 0.0}})
    splits = [name for name in first["accuracy"] if name != "average"]
    lines = [
        f"{'target':7s} {'method':9s} {'bits':>4s} {'PSNR':>7s} "
        + " ".join(f"{name[:10]:>10s}" for name in splits)
        + f" {'avg':>6s} {'Mbit':>7s} {'weight err':>11s}"
    ]
    for (target, method, bits), result in sweep.items():
        accuracy = result["accuracy"]
        error = max(result["weight_error"].values())
        lines.append(
            f"{target:7s} {method:9s} {bits:4d} {result['psnr']:7.2f} "
            + " ".join(f"{100 * accuracy[s]:10.1f}" for s in splits)
            + f" {100 * accuracy['average']:6.1f} {result['megabits']:7.2f} {error:11.2e}"
        )
    return "\n".join(lines)
