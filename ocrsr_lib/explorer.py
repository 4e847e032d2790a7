"""The quantization explorer: pick the target model, its layer groups, the bit width and the
method; PSNR, accuracy, size and a few SR images with coloured readings update. Evaluations go
through `evaluate_setting` (cached on disk) on the first words of each test split."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import display

from ocrsr_lib.config import Session
from ocrsr_lib.data import session_splits
from ocrsr_lib.evaluation import character_marks
from ocrsr_lib.pipelines import (
    EDSR_PIPELINE,
    Pipeline,
    QuantSetting,
    evaluate_setting,
    quantized_pipeline,
    sr_kind,
)
from ocrsr_lib.quant.layers import PAPER_GROUPS, groups_in
from ocrsr_lib.quant.quantizers import METHODS
from ocrsr_lib.runs import trained
from ocrsr_lib.viz import image_grid, marked_word

EXPLORER_WORDS = 100  # words per test split an explorer evaluation reads (responsiveness)


def summary(result: dict, reference: dict) -> str:
    """One line per measure, with the change against the unquantized pipeline."""
    accuracy, base = result["accuracy"], reference["accuracy"]
    cells = ", ".join(f"{s} {100 * accuracy[s]:.1f}%" for s in ("easy", "medium", "hard"))
    return (
        f"PSNR {result['psnr']:.2f} dB ({result['psnr'] - reference['psnr']:+.2f})\n"
        f"accuracy {100 * accuracy['average']:.1f}% "
        f"({100 * (accuracy['average'] - base['average']):+.1f} points; {cells})\n"
        f"size {result['megabits']:.1f} Mbit = {result['megabytes']:.2f} MB "
        f"({100 * result['megabits'] / reference['megabits']:.0f}% of float)"
    )


@torch.no_grad()
def examples_figure(
    session: Session, setting: QuantSetting, pipeline: Pipeline, indices: list[int]
) -> plt.Figure:
    """Hard test words: HR with label, the quantized pipeline's SR image and its reading."""
    hard = session_splits(session)["hard"]
    sr, ocr = quantized_pipeline(session, setting, pipeline)
    rows, readings = [], []
    for index in indices:
        lr, hr, label = hard[index]
        image = sr.model.eval()(lr[None])
        rows.append([hr, image[0]])
        readings.append((label, ocr.model.eval().read(image)[0]))
    figure = image_grid(
        rows, column_titles=["HR and label", "quantized SR + CDistNet"], cell_size=(2.8, 1.0)
    )
    for row, (label, word) in enumerate(readings):
        marked_word(figure.axes[2 * row], label, [True] * len(label))
        marked_word(figure.axes[2 * row + 1], word, character_marks(word, label))
    figure.subplots_adjust(hspace=0.9)
    return figure


def quantization_explorer(
    session: Session, pipeline: Pipeline = EDSR_PIPELINE, indices: tuple[int, ...] = (0, 1, 2)
) -> widgets.VBox:
    """The widget: controls on top, the measures and the example images below.

    Explained in chapter 5.
    """
    sr_groups = groups_in(trained(session, pipeline.sr).model)
    ocr_groups = groups_in(trained(session, pipeline.ocr).model)
    kind = sr_kind(session, pipeline)
    controls = {
        "target": widgets.Dropdown(options=["sr", "ocr", "sr+ocr"], value="sr+ocr"),
        "bits": widgets.IntSlider(value=4, min=2, max=8, description="bits"),
        "method": widgets.Dropdown(options=list(METHODS), value="aciq-mix"),
        "sr_groups": widgets.SelectMultiple(options=sr_groups, value=PAPER_GROUPS[kind], rows=6),
        "ocr_groups": widgets.SelectMultiple(
            options=ocr_groups, value=PAPER_GROUPS["cdistnet"], rows=6
        ),
    }
    output = widgets.Output()
    reference = evaluate_setting(session, QuantSetting("none"), pipeline, words=EXPLORER_WORDS)

    def setting() -> QuantSetting:
        return QuantSetting(
            target=controls["target"].value,
            bits=controls["bits"].value,
            method=controls["method"].value,
            sr_groups=tuple(controls["sr_groups"].value),
            ocr_groups=tuple(controls["ocr_groups"].value),
        )

    def update(_change=None) -> None:
        chosen = setting()
        result = evaluate_setting(session, chosen, pipeline, words=EXPLORER_WORDS)
        with output:
            output.clear_output(wait=True)
            print(summary(result, reference))
            figure = examples_figure(session, chosen, pipeline, list(indices))
            display(figure)
            plt.close(figure)

    for control in controls.values():
        control.observe(update, names="value")
    update()
    labels = ["target", "bits", "method", "SR layer groups", "OCR layer groups"]
    rows = [
        widgets.HBox([widgets.Label(t, layout={"width": "130px"}), c])
        for t, c in zip(labels, controls.values(), strict=True)
    ]
    explorer = widgets.VBox([*rows, output])
    explorer.controls = controls  # for tests and for scripted use
    return explorer
