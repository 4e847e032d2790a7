"""The paper's results as this book measures them: Table 1's comparisons, the quantization sweep,
Table 2's selection rule and rows, and Markdown tables of both beside the paper's numbers.

Everything here reads the cached artifacts of chapters 4 and 5 and computes what is missing, so
the results chapter and `ocrsr report` show the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt

from ocrsr_lib.checkpoints import atomic_write_text
from ocrsr_lib.config import Session
from ocrsr_lib.data import TEST_DIFFICULTIES, scoring_splits, split_labels
from ocrsr_lib.evaluation import accuracy_of, character_marks, paired_difference
from ocrsr_lib.paper import PAPER_TABLE_1, PAPER_TABLE_2
from ocrsr_lib.pipelines import (
    BEAM_SIZE,
    EDSR_PIPELINE,
    TABLE_1_PIPELINES,
    TBSRN_PIPELINE,
    Pipeline,
    QuantSetting,
    cdistnet_readings,
    evaluate_setting,
    sr_images,
    table_1,
)
from ocrsr_lib.progress import progress_bar
from ocrsr_lib.tables import markdown_table, percent
from ocrsr_lib.viz import image_grid, marked_word

SWEEP_TARGETS = ("sr", "ocr", "sr+ocr")
SWEEP_METHODS = ("aciq-mix", "minmax")
SWEEP_BITS = tuple(range(8, 1, -1))
# the words of each test split the chapters' sweeps read, so that a chapter runs in minutes on a
# CPU; `ocrsr sweep` reads every scored word
CHAPTER_SWEEP_WORDS = 50
BICUBIC_ROW = "bicubic + CDistNet (fine-tuned)"
# Table 2: the method its widths are chosen with, its pipelines, and how its rows name a part
SELECTION_METHOD = "aciq-mix"
TABLE_2_PIPELINES: dict[str, Pipeline] = {"TBSRN": TBSRN_PIPELINE, "EDSR": EDSR_PIPELINE}
TARGET_NAMES = {"none": "not quantized", "sr": "SR", "ocr": "OCR", "sr+ocr": "SR+OCR"}


def table_1_readings(session: Session, row: str) -> list[str]:
    """Every scored test word a Table 1 pipeline read (easy, then medium, then hard)."""
    images, name = TABLE_1_PIPELINES[row]
    readings = cdistnet_readings(session, name, images)
    return [word for split in TEST_DIFFICULTIES for word in readings[split]]


def scored_labels(session: Session) -> list[str]:
    """The labels of the scored test words, in the order of `table_1_readings`."""
    test = scoring_splits(session)
    return [label for split in TEST_DIFFICULTIES for label in split_labels(test[split])]


@dataclass(frozen=True)
class Comparison:
    """Two Table 1 pipelines on the same words: accuracy difference (ours and the paper's, in
    points) and McNemar's paired counts (words only the first reads, only the second, z)."""

    first: str
    second: str
    points: float
    paper_points: float
    only_first: int
    only_second: int
    z: float

    @property
    def reproduces(self) -> bool:
        """Same sign as the paper's difference and outside the noise (|z| >= 2)."""
        return self.points * self.paper_points > 0 and abs(self.z) >= 2


def compare_pipelines(session: Session, first: str, second: str) -> Comparison:
    """Two Table 1 rows on the same scored words, with the paper's difference between them."""
    ours = table_1(session)
    counts = paired_difference(
        table_1_readings(session, first), table_1_readings(session, second), scored_labels(session)
    )
    points = 100 * (ours[first]["average"] - ours[second]["average"])
    paper = PAPER_TABLE_1[first]["average"] - PAPER_TABLE_1[second]["average"]
    return Comparison(first, second, points, paper, *counts)


def table_1_comparisons(session: Session) -> list[Comparison]:
    """The paper's claims in Table 1: per SR model, SR-fine-tuned beats HR-fine-tuned CDistNet
    on SR images and the SR pipeline beats bicubic + a CDistNet fine-tuned on bicubic images;
    and the EDSR pipeline beats the TBSRN one.

    Explained in chapter 6.
    """
    comparisons = []
    for model in ("EDSR", "TBSRN"):
        sr_row = f"{model} + CDistNet (SR-fine-tuned)"
        for other in (f"{model} + CDistNet (HR-fine-tuned)", BICUBIC_ROW):
            comparisons.append(compare_pipelines(session, sr_row, other))
    edsr, tbsrn = (f"{model} + CDistNet (SR-fine-tuned)" for model in ("EDSR", "TBSRN"))
    comparisons.append(compare_pipelines(session, edsr, tbsrn))
    return comparisons


def edsr_only_hard_words(session: Session) -> list[int]:
    """Hard test words (indices) that EDSR + CDistNet reads right and TBSRN + CDistNet does not
    (Figure 2's examples), both SR-fine-tuned."""
    labels = split_labels(scoring_splits(session)["hard"])
    right = {}
    for model in ("EDSR", "TBSRN"):
        images, name = TABLE_1_PIPELINES[f"{model} + CDistNet (SR-fine-tuned)"]
        words = cdistnet_readings(session, name, images)["hard"]
        right[model] = [accuracy_of([w], [t]) == 1 for w, t in zip(words, labels, strict=True)]
    pairs = zip(right["EDSR"], right["TBSRN"], strict=True)
    return [i for i, (edsr, tbsrn) in enumerate(pairs) if edsr and not tbsrn]


def figure_2(session: Session, indices: Sequence[int]) -> plt.Figure:
    """The paper's Figure 2 for hard test words: LR, HR with its label, and the TBSRN and EDSR
    SR images with what their SR-fine-tuned CDistNet read, characters green if right.

    Explained in chapter 4.
    """
    hard = scoring_splits(session)["hard"]
    labels = split_labels(hard)
    columns = {}
    for model in ("TBSRN", "EDSR"):
        images, name = TABLE_1_PIPELINES[f"{model} + CDistNet (SR-fine-tuned)"]
        columns[model] = (
            sr_images(session, images)["hard"],
            cdistnet_readings(session, name, images),
        )
    rows = []
    for i in indices:
        lr, hr, _ = hard[i]
        rows.append([lr, hr, *(stack[i] for stack, _ in columns.values())])
    figure = image_grid(
        rows,
        column_titles=["LR", "HR and label", "TBSRN SR + CDistNet", "EDSR SR + CDistNet"],
        cell_size=(2.3, 1.0),
    )
    for row, i in enumerate(indices):
        axes = figure.axes[row * 4 : row * 4 + 4]
        marked_word(axes[1], labels[i], [True] * len(labels[i]))
        for axis, (_, readings) in zip(axes[2:], columns.values(), strict=True):
            word = readings["hard"][i]
            marked_word(axis, word, character_marks(word, labels[i]))
    figure.subplots_adjust(hspace=0.9)
    return figure


def quantization_sweep(
    session: Session,
    targets: Iterable[str] = SWEEP_TARGETS,
    methods: Iterable[str] = SWEEP_METHODS,
    bit_widths: Iterable[int] = SWEEP_BITS,
    words: int | None = None,
    pipeline: Pipeline = EDSR_PIPELINE,
    data: str = "test",
) -> dict[tuple[str, str, int], dict]:
    """Chapter 5's sweep of a pipeline, EDSR's by default (greedy reading of the test splits or
    of the validation words, all or the first `words` of each): the evaluation of each
    (target, method, bits), cached."""
    settings = [(t, m, b) for t in targets for m in methods for b in bit_widths]
    return {
        (target, method, bits): evaluate_setting(
            session, QuantSetting(target, bits, method), pipeline, words=words, data=data
        )
        for target, method, bits in progress_bar(settings, desc="quantization sweep")
    }


@dataclass(frozen=True)
class AcceptanceRule:
    """How much a quantized pipeline may lose against float: accuracy points and PSNR dB."""

    accuracy_points: float = 1.0
    psnr_db: float = 0.1

    def accepts(self, reference: Mapping, result: Mapping) -> bool:
        """Whether `result` lost no more than allowed (to within float rounding)."""
        drop = 100 * (reference["accuracy"]["average"] - result["accuracy"]["average"])
        psnr_drop = reference["psnr"] - result["psnr"]
        return drop <= self.accuracy_points + 1e-9 and psnr_drop <= self.psnr_db + 1e-9


def smallest_acceptable_bits(
    reference: Mapping,
    sweep: Mapping[tuple[str, str, int], Mapping],
    target: str = "sr+ocr",
    method: str = "aciq-mix",
    rule: AcceptanceRule = AcceptanceRule(),
) -> int | None:
    """The fewest bits whose sweep result the rule accepts; None when it accepts none."""
    widths = sorted(bits for (t, m, bits) in sweep if (t, m) == (target, method))
    accepted = [bits for bits in widths if rule.accepts(reference, sweep[target, method, bits])]
    return min(accepted, default=None)


def chosen_bit_widths(
    session: Session, pipeline: Pipeline, rule: AcceptanceRule = AcceptanceRule()
) -> dict[str, int | None]:
    """Table 2's choice per quantized part ("sr", "ocr", "sr+ocr"): the fewest bits the rule
    accepts against the float pipeline, both read on the validation words (never on test);
    None where no width from 8 down to 2 is accepted."""
    reference = evaluate_setting(session, QuantSetting("none"), pipeline, data="validation")
    sweep = quantization_sweep(
        session, SWEEP_TARGETS, [SELECTION_METHOD], pipeline=pipeline, data="validation"
    )
    return {
        target: smallest_acceptable_bits(reference, sweep, target, SELECTION_METHOD, rule)
        for target in SWEEP_TARGETS
    }


@dataclass(frozen=True)
class Table2Row:
    """One row of Table 2: an SR model's pipeline with a part quantized ("none", "sr", "ocr",
    "sr+ocr") at the width chosen on validation, and its test evaluation (beam 10); `bits` and
    `result` are None where no width was accepted."""

    model: str  # "TBSRN" or "EDSR"
    target: str
    bits: int | None
    result: dict | None

    @property
    def name(self) -> str:
        """The row as the book names it, e.g. "EDSR + CDistNet, SR+OCR"."""
        return f"{self.model} + CDistNet, {TARGET_NAMES[self.target]}"


def table_2(session: Session, rule: AcceptanceRule = AcceptanceRule()) -> list[Table2Row]:
    """The paper's Table 2 as measured: for TBSRN and EDSR, the float pipeline and the pipeline
    with its SR model, its CDistNet or both quantized at the widths chosen on validation
    (`chosen_bit_widths`), each read on test with beam 10.

    Explained in chapter 6.
    """
    rows = []
    for model, pipeline in TABLE_2_PIPELINES.items():
        float_result = evaluate_setting(session, QuantSetting("none"), pipeline, beam=BEAM_SIZE)
        rows.append(Table2Row(model, "none", None, float_result))
        for target, bits in chosen_bit_widths(session, pipeline, rule).items():
            setting = QuantSetting(target, bits or 8, SELECTION_METHOD)
            result = evaluate_setting(session, setting, pipeline, beam=BEAM_SIZE) if bits else None
            rows.append(Table2Row(model, target, bits, result))
    return rows


def table_1_markdown(session: Session) -> str:
    """Table 1 as measured beside the paper's accuracies (%), easy / medium / hard / average."""
    ours = table_1(session)
    header = ["pipeline", *TEST_DIFFICULTIES, "average", "paper: easy", "medium", "hard", "average"]
    rows = []
    for row, cells in ours.items():
        paper = PAPER_TABLE_1[row]
        ours_cells = [percent(cells[c]) for c in (*TEST_DIFFICULTIES, "average")]
        paper_cells = [
            f"{paper[c]:.2f}" if c in paper else "–" for c in (*TEST_DIFFICULTIES, "average")
        ]
        rows.append([row, *ours_cells, *paper_cells])
    return markdown_table(header, rows)


def table_2_markdown(rows: Iterable[Table2Row]) -> str:
    """Table 2 as measured (bits chosen on validation, PSNR, accuracy, size of every stored
    parameter and of those that run, in Mbit, the paper's unit, and MB) beside the paper's row
    (its bits, PSNR, accuracy and size in Mbit, which it calls MB)."""
    header = ["pipeline", "bits", "PSNR (dB)", "accuracy (%)", "Mbit", "Mbit running", "MB"]
    header += ["paper: bits", "PSNR", "accuracy", "Mbit"]
    lines = []
    for row in rows:
        paper = PAPER_TABLE_2[row.model][row.target]
        paper_cells = [
            "–" if paper["bits"] is None else str(paper["bits"]),
            f"{paper['psnr']:.2f}",
            f"{paper['accuracy']:.2f}",
            f"{paper['size']:.2f}",
        ]
        if row.result is None:
            ours = ["none accepted", "–", "–", "–", "–", "–"]
        else:
            result = row.result
            ours = [
                "–" if row.bits is None else str(row.bits),
                f"{result['psnr']:.2f}",
                percent(result["accuracy"]["average"]),
                f"{result['megabits']:.2f}",
                f"{result['running_megabits']:.2f}",
                f"{result['megabytes']:.2f}",
            ]
        lines.append([row.name, *ours, *paper_cells])
    return markdown_table(header, lines)


def comparisons_markdown(comparisons: Iterable[Comparison]) -> str:
    """The paired comparisons: points ours and the paper's, McNemar counts and z, verdict."""
    header = ["SR pipeline", "against", "points", "paper", "only SR", "only other", "z", "same?"]
    rows = [
        [
            c.first,
            c.second,
            f"{c.points:+.1f}",
            f"{c.paper_points:+.1f}",
            c.only_first,
            c.only_second,
            f"{c.z:+.1f}",
            "yes" if c.reproduces else "no",
        ]
        for c in comparisons
    ]
    return markdown_table(header, rows)


def write_report(session: Session, folder: Path) -> list[Path]:
    """Write Table 1, the comparisons and Table 2 (widths chosen on validation) as Markdown
    files into `folder`; computes whatever is not cached. Returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        "table_1.md": table_1_markdown(session),
        "comparisons.md": comparisons_markdown(table_1_comparisons(session)),
        "table_2.md": table_2_markdown(table_2(session))
        + f"\n\nBit widths: the fewest accepted on the validation words ({AcceptanceRule()}).",
    }
    written = []
    for name, text in texts.items():
        path = folder / name
        atomic_write_text(path, f"profile {session.profile.name}\n\n{text}\n")
        written.append(path)
    return written
