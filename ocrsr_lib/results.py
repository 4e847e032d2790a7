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
import torch

from ocrsr_lib.checkpoints import atomic_write_text
from ocrsr_lib.claims import Claim, claims_markdown, mcnemar_test, paired_psnr_test
from ocrsr_lib.config import Session
from ocrsr_lib.data import TEST_DIFFICULTIES, scoring_splits, split_labels
from ocrsr_lib.evaluation import accuracy_of, character_marks
from ocrsr_lib.paper import PAPER_TABLE_1, PAPER_TABLE_2
from ocrsr_lib.pipelines import (
    BEAM_SIZE,
    EDSR_PIPELINE,
    JOINT_PIPELINE,
    TABLE_1_PIPELINES,
    TBSRN_PIPELINE,
    Pipeline,
    QuantSetting,
    cdistnet_readings,
    evaluate_setting,
    quantized_pipeline,
    sr_images,
    table_1,
    upscale_split,
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
    return flat_readings(cdistnet_readings(session, name, images))


def scored_labels(session: Session) -> list[str]:
    """The labels of the scored test words, in the order of `table_1_readings`."""
    test = scoring_splits(session)
    return [label for split in TEST_DIFFICULTIES for label in split_labels(test[split])]


def figure_2_columns(
    session: Session, bits: Mapping[str, int | None] | None = None
) -> dict[str, tuple[torch.Tensor, list[str]]]:
    """Figure 2's SR columns on the hard test words, (images, beam-10 readings) each: per SR
    model its float pipeline (SR-fine-tuned CDistNet) and, where `bits` gives the model a width,
    the same pipeline quantized SR+OCR at that width."""
    hard = scoring_splits(session)["hard"]
    columns = {}
    for model, pipeline in TABLE_2_PIPELINES.items():
        images = sr_images(session, pipeline.sr)["hard"]
        columns[f"{model} + CDistNet"] = (
            images,
            cdistnet_readings(session, pipeline.ocr, pipeline.sr)["hard"],
        )
        width = (bits or {}).get(model)
        if width:
            setting = QuantSetting("sr+ocr", width, SELECTION_METHOD)
            quantized_sr, _ = quantized_pipeline(session, setting, pipeline)
            result = evaluate_setting(session, setting, pipeline, beam=BEAM_SIZE)
            columns[f"{model}, SR+OCR {width}-bit"] = (
                upscale_split(quantized_sr.model, hard, session.device),
                result["readings"]["hard"],
            )
    return columns


def edsr_only_hard_words(
    session: Session, bits: Mapping[str, int | None] | None = None
) -> list[int]:
    """Hard test words (indices) that the EDSR pipeline reads right and the TBSRN one does not
    (Figure 2's examples): each quantized SR+OCR where `bits` gives it a width, else float."""
    labels = split_labels(scoring_splits(session)["hard"])
    columns = figure_2_columns(session, bits)
    right = {}
    for model in TABLE_2_PIPELINES:
        words = [readings for name, (_, readings) in columns.items() if name.startswith(model)][-1]
        right[model] = [accuracy_of([w], [t]) == 1 for w, t in zip(words, labels, strict=True)]
    pairs = zip(right["EDSR"], right["TBSRN"], strict=True)
    return [i for i, (edsr, tbsrn) in enumerate(pairs) if edsr and not tbsrn]


def figure_2(
    session: Session, indices: Sequence[int], bits: Mapping[str, int | None] | None = None
) -> plt.Figure:
    """The paper's Figure 2 for hard test words: LR, HR with its label, and each SR column of
    `figure_2_columns` (float, and quantized where `bits` gives a width) with what its CDistNet
    read, characters green if right.

    Explained in chapter 4.
    """
    hard = scoring_splits(session)["hard"]
    labels = split_labels(hard)
    columns = figure_2_columns(session, bits)
    rows = []
    for i in indices:
        lr, hr, _ = hard[i]
        rows.append([lr, hr, *(stack[i] for stack, _ in columns.values())])
    width = 2 + len(columns)
    figure = image_grid(
        rows,
        column_titles=["LR", "HR and label", *columns],
        cell_size=(2.3 if width == 4 else 1.9, 1.0),
    )
    for row, i in enumerate(indices):
        axes = figure.axes[row * width : (row + 1) * width]
        marked_word(axes[1], labels[i], [True] * len(labels[i]))
        for axis, (_, readings) in zip(axes[2:], columns.values(), strict=True):
            word = readings[i]
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


def sr_psnr(session: Session, pipeline: Pipeline) -> torch.Tensor:
    """Per-image PSNR (dB) of a float pipeline's SR images of the scored test words, in the
    order of `table_1_readings` (from its cached beam-10 evaluation, which Table 2 shares)."""
    result = evaluate_setting(session, QuantSetting("none"), pipeline, beam=BEAM_SIZE)
    return torch.tensor(result["psnr_per_image"])


def flat_readings(readings: Mapping[str, list[str]]) -> list[str]:
    """Readings per test split as one list, in the order of `table_1_readings`."""
    return [word for split in TEST_DIFFICULTIES for word in readings[split]]


def paper_points(first: str, second: str) -> float:
    """The paper's Table 1 difference between two rows, in points."""
    return PAPER_TABLE_1[first]["average"] - PAPER_TABLE_1[second]["average"]


def table_1_claims(session: Session) -> list[Claim]:
    """Table 1's claims per SR model: SR-fine-tuned beats HR-fine-tuned; the SR pipeline, and
    even the HR-fine-tuned one, beats bicubic + a CDistNet fine-tuned on bicubic images; and one
    recognizer that never saw SR images (the HR fine-tune) reads SR images better than bicubic
    ones (the paper: the gain is "not only from fine-tuning"). Then EDSR beats TBSRN."""
    labels = scored_labels(session)
    bicubic = table_1_readings(session, BICUBIC_ROW)
    hr_reads_bicubic = flat_readings(cdistnet_readings(session, "finetune-hr", "bicubic"))
    claims = []
    for model in ("EDSR", "TBSRN"):
        sr_row, hr_row = (f"{model} + CDistNet ({ft}-fine-tuned)" for ft in ("SR", "HR"))
        sr_reads, hr_reads = table_1_readings(session, sr_row), table_1_readings(session, hr_row)
        for statement, first, second, paper in (
            (
                f"{model}: SR-fine-tuned beats HR-fine-tuned CDistNet",
                sr_reads,
                hr_reads,
                paper_points(sr_row, hr_row),
            ),
            (
                f"{model} pipeline beats bicubic + fine-tuned CDistNet",
                sr_reads,
                bicubic,
                paper_points(sr_row, BICUBIC_ROW),
            ),
            (
                f"{model} + HR-fine-tuned beats bicubic + fine-tuned CDistNet",
                hr_reads,
                bicubic,
                paper_points(hr_row, BICUBIC_ROW),
            ),
            (
                f"{model} SR beats bicubic, same reader never trained on SR",
                hr_reads,
                hr_reads_bicubic,
                None,
            ),
        ):
            claims.append(
                Claim(statement, "better", "points", mcnemar_test(first, second, labels), paper)
            )
    edsr, tbsrn = (f"{model} + CDistNet (SR-fine-tuned)" for model in ("EDSR", "TBSRN"))
    claims.append(
        Claim(
            "EDSR pipeline beats TBSRN pipeline in accuracy",
            "better",
            "points",
            mcnemar_test(table_1_readings(session, edsr), table_1_readings(session, tbsrn), labels),
            paper_points(edsr, tbsrn),
        )
    )
    edsr_psnr, tbsrn_psnr = (PAPER_TABLE_2[model]["none"]["psnr"] for model in ("EDSR", "TBSRN"))
    claims.append(
        Claim(
            "EDSR beats TBSRN in PSNR",
            "better",
            "dB",
            paired_psnr_test(sr_psnr(session, EDSR_PIPELINE), sr_psnr(session, TBSRN_PIPELINE)),
            edsr_psnr - tbsrn_psnr,
        )
    )
    return claims


def two_stage_claims(session: Session) -> list[Claim]:
    """Section 4.1.3: two stages (SR model, then CDistNet fine-tuned on its images) beat one
    stage that adds CDistNet's loss to the SR training, in PSNR and in accuracy."""
    labels = scored_labels(session)
    two = flat_readings(cdistnet_readings(session, EDSR_PIPELINE.ocr, EDSR_PIPELINE.sr))
    one = flat_readings(cdistnet_readings(session, JOINT_PIPELINE.ocr, JOINT_PIPELINE.sr))
    psnr_test = paired_psnr_test(sr_psnr(session, EDSR_PIPELINE), sr_psnr(session, JOINT_PIPELINE))
    return [
        Claim(
            "two stages beat one joint stage in accuracy",
            "better",
            "points",
            mcnemar_test(two, one, labels),
            None,
        ),
        Claim("two stages beat one joint stage in PSNR", "better", "dB", psnr_test, None),
    ]


# the quantized settings the paper's text draws claims from, at the paper's widths (so that no
# choice of ours enters them): (model, target, claim kind, measure)
PAPER_QUANTIZATION_CLAIMS = (
    ("EDSR", "sr+ocr", "not worse", "accuracy"),
    ("TBSRN", "sr", "not worse", "accuracy"),
    ("EDSR", "sr", "small change", "PSNR"),
    ("TBSRN", "sr+ocr", "small change", "PSNR"),
)


def quantization_claims(session: Session) -> list[Claim]:
    """Section 5: quantized at the paper's widths, accuracy is at least float's (EDSR SR+OCR
    7-bit, TBSRN SR 4-bit) and PSNR moves little (EDSR's largest change, SR 4-bit; TBSRN's,
    SR+OCR 6-bit); every pipeline read on test with beam 10."""
    labels = scored_labels(session)
    claims = []
    for model, target, kind, measure in PAPER_QUANTIZATION_CLAIMS:
        pipeline, paper = TABLE_2_PIPELINES[model], PAPER_TABLE_2[model]
        bits = paper[target]["bits"]
        float_result = evaluate_setting(session, QuantSetting("none"), pipeline, beam=BEAM_SIZE)
        setting = QuantSetting(target, bits, SELECTION_METHOD)
        quantized = evaluate_setting(session, setting, pipeline, beam=BEAM_SIZE)
        statement = f"{model} + CDistNet, {TARGET_NAMES[target]} {bits}-bit: " + (
            "accuracy at least float's" if measure == "accuracy" else "PSNR barely moves"
        )
        if measure == "accuracy":
            test = mcnemar_test(
                flat_readings(quantized["readings"]),
                flat_readings(float_result["readings"]),
                labels,
            )
            claims.append(
                Claim(
                    statement,
                    kind,
                    "points",
                    test,
                    paper[target]["accuracy"] - paper["none"]["accuracy"],
                )
            )
        else:
            test = paired_psnr_test(
                torch.tensor(quantized["psnr_per_image"]),
                torch.tensor(float_result["psnr_per_image"]),
            )
            claims.append(
                Claim(statement, kind, "dB", test, paper[target]["psnr"] - paper["none"]["psnr"])
            )
    return claims


def paper_claims(session: Session) -> list[Claim]:
    """Every claim of the paper the book measures, each judged by a paired test on the scored
    test words (`ocrsr_lib.claims`).

    Explained in chapter 6.
    """
    return [*table_1_claims(session), *two_stage_claims(session), *quantization_claims(session)]


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


def write_report(session: Session, folder: Path) -> list[Path]:
    """Write Table 1, the paper's claims judged and Table 2 (widths chosen on validation) as
    Markdown files into `folder`; computes whatever is not cached. Returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        "table_1.md": table_1_markdown(session),
        "claims.md": claims_markdown(paper_claims(session)),
        "table_2.md": table_2_markdown(table_2(session))
        + f"\n\nBit widths: the fewest accepted on the validation words ({AcceptanceRule()}).",
    }
    written = []
    for name, text in texts.items():
        path = folder / name
        atomic_write_text(path, f"profile {session.profile.name}\n\n{text}\n")
        written.append(path)
    return written
