"""Benchmarks: measured figures for the closing notes and the book's appendix (not tests).

Prints a table: synthetic TextZoom generation rate, LMDB loading rate through a DataLoader, and
SR training speed with the MSE and with the text-focus loss (the cost of the guide), CDistNet
training speed, CDistNet reading speed greedy vs beam 10, and SR+OCR inference (STN+EDSR, then
CDistNet with beam 10). Model rows also give the FLOPs per image (`ocrsr_lib.flops`: forward
for inference, forward and backward for a training step), the achieved FLOP/s and, on a GPU
whose peak is known, its fraction of the dense bf16 peak.
Run with `make bench` or `.venv/bin/python benchmarks/run_benchmarks.py [--pairs N]`;
`--only sr,pipeline` picks row groups, `--markdown` prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from ocrsr_lib.data import TextZoomDataset
from ocrsr_lib.data.synth import generate_split
from ocrsr_lib.flops import bf16_peak, flops_per_image
from ocrsr_lib.losses import TextFocusLoss
from ocrsr_lib.models import create_model, upscale_batch
from ocrsr_lib.models.cdistnet import (
    CDistNet,
    encode_targets,
    read_words,
    to_cdistnet_input,
)
from ocrsr_lib.runs.cdistnet import label_smoothed_cross_entropy

WORDS = ["street", "coffee", "open", "24", "exit", "bakery", "no", "parking"]
GROUPS = ("data", "sr", "sr-inference", "cdistnet", "pipeline")
READ_STEPS = 12  # decoding steps at most in the reading rows (an untrained model rarely stops)
SEED = 0  # every model row starts from it, so its weights, and when reading stops, are repeatable

Measured = tuple[float, float]  # images per second, FLOPs per image
Row = tuple[str, float, float | None]  # measurement, images or pairs per second, FLOPs per image


@dataclass(frozen=True)
class Settings:
    """How the models run: device, bf16 autocast, channels-last layout, torch.compile."""

    device: torch.device
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False

    def describe(self) -> str:
        """The precision and options, for the table's header."""
        parts = [f"bf16 autocast ({self.device.type})" if self.bf16 else "fp32, no autocast"]
        parts.append("channels-last" if self.channels_last else "contiguous (NCHW)")
        parts.append("torch.compile" if self.compile else "eager")
        return ", ".join(parts)

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast on the device when asked, else a context that does nothing."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def place(self, model: nn.Module) -> nn.Module:
        """The model on the device, in channels-last layout when asked."""
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model

    def images(self, *shape: int) -> torch.Tensor:
        """Random images in [0, 1] of `shape` on the device, in channels-last layout when asked."""
        images = torch.rand(*shape, device=self.device)
        return (
            images.contiguous(memory_format=torch.channels_last) if self.channels_last else images
        )

    def compile_in_place(self, modules: Sequence[nn.Module]) -> None:
        """torch.compile each module's forward in place when asked."""
        if self.compile:
            for module in modules:
                module.compile()


def machine() -> str:
    """CPU cores, GPU and torch version of this machine."""
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, torch {torch.__version__}"


def peak_line(device: torch.device) -> tuple[str, float | None]:
    """The header's line on the dense bf16 peak, and the peak in FLOP/s (None when unknown)."""
    if device.type != "cuda":
        return "no bf16 peak on CPU", None
    name = torch.cuda.get_device_name(device)
    peak = bf16_peak(name)
    if peak is None:
        return f"unknown peak ({name})", None
    return f"{peak / 1e12:.1f} TFLOP/s dense bf16 ({name})", peak


def generation_rate(folder: Path, pairs: int, workers: int) -> float:
    """Pairs per second rendered and written as an LMDB split."""
    start = time.perf_counter()
    generate_split(folder / f"gen-{workers}", "medium", pairs, seed=0, workers=workers)
    return pairs / (time.perf_counter() - start)


def loading_rate(split: Path, workers: int, batch_size: int = 64, epochs: int = 2) -> float:
    """Pairs per second decoded and batched by a DataLoader (the second epoch is warm)."""
    dataset = TextZoomDataset(split)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    for _ in loader:  # first epoch: start the workers and warm the page cache
        pass
    start = time.perf_counter()
    for _ in range(epochs):
        for _ in loader:
            pass
    return epochs * len(dataset) / (time.perf_counter() - start)


def timed_rate(work: Callable[[], None], images: int, repeats: int) -> float:
    """Images per second of `work` (which handles `images` images), after one warm-up call."""
    cuda = torch.cuda.is_available()
    work()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        work()
    if cuda:
        torch.cuda.synchronize()
    return repeats * images / (time.perf_counter() - start)


def measure(
    work: Callable[[], None],
    images: int,
    repeats: int,
    settings: Settings,
    compiled: Sequence[nn.Module] = (),
) -> Measured:
    """Images per second of `work` and its FLOPs per image, counted on one eager call before
    the `compiled` modules are compiled (when asked)."""
    flops = flops_per_image(work, images)
    settings.compile_in_place(compiled)
    return timed_rate(work, images, repeats), flops


def sr_training(
    model: nn.Module,
    settings: Settings,
    batch_size: int = 16,
    steps: int = 8,
    loss: TextFocusLoss | None = None,
) -> Measured:
    """SR training steps (forward, backward, Adam) on random pairs.

    The loss is the MSE, or a text-focus loss (its guide's weights do not change its cost).
    """
    model = settings.place(model).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    lr = settings.images(batch_size, 3, 16, 64)
    hr = settings.images(batch_size, 3, 32, 128)
    words = [WORDS[i % len(WORDS)] for i in range(batch_size)]
    compiled = [model]
    if loss is not None:
        loss = settings.place(loss)
        compiled.append(loss.recognizer)

    def step() -> None:
        with settings.autocast():
            if loss is None:
                value = nn.functional.mse_loss(model(lr), hr)
            else:
                value = loss(model(lr), hr, words)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()

    return measure(step, batch_size, steps, settings, compiled)


def cdistnet_training(size: str, settings: Settings, batch_size: int, steps: int = 4) -> Measured:
    """CDistNet training steps (official optimiser, smoothed loss)."""
    model = settings.place(create_model("cdistnet", size)).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
    images = to_cdistnet_input(settings.images(batch_size, 3, 32, 128))
    words = [WORDS[i % len(WORDS)] for i in range(batch_size)]
    targets = encode_targets(words, device=settings.device)

    def step() -> None:
        with settings.autocast():
            loss = label_smoothed_cross_entropy(model(images, targets), targets[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    return measure(step, batch_size, steps, settings, [model])


def reading_parts(model: CDistNet) -> list[nn.Module]:
    """The submodules that decoding calls (it calls `decode`, not `forward`), to compile."""
    return [model.visual_branch, model.semantic_branch, model.positional_branch, model.mdcdp]


def cdistnet_reading(
    size: str, settings: Settings, batch_size: int, beam_size: int, repeats: int = 2
) -> Measured:
    """CDistNet decoding (greedy is beam 1) on random images, in inference mode; an untrained
    model runs to the step limit or stops early, so only compare beams within one table."""
    model = settings.place(create_model("cdistnet", size)).eval()
    images = settings.images(batch_size, 3, 32, 128)

    def work() -> None:
        with torch.inference_mode(), settings.autocast():
            read_words(model, images, beam_size, READ_STEPS)

    return measure(work, batch_size, repeats, settings, reading_parts(model))


def pipeline_reading(
    size: str, settings: Settings, batch_size: int, beam_size: int = 10, repeats: int = 2
) -> Measured:
    """SR+OCR inference: STN+EDSR on random 16x64 LR images, CDistNet reading its 32x128 output.

    In eval mode the STN does not run (`RectifiedSR`'s default, as in the chapters).
    """
    sr = settings.place(create_model("stn-edsr", size)).eval()
    ocr = settings.place(create_model("cdistnet", size)).eval()
    lr = settings.images(batch_size, 3, 16, 64)

    def work() -> None:
        with torch.inference_mode(), settings.autocast():
            read_words(ocr, sr(lr), beam_size, READ_STEPS)

    return measure(work, batch_size, repeats, settings, [sr, *reading_parts(ocr)])


def sr_inference(model: nn.Module, settings: Settings, lr: torch.Tensor, layout: str) -> Measured:
    """SR inference on an LR batch: as evaluations run it (`upscale_batch`, "channels-last"
    input) or with the input as it is ("contiguous"); the weights are the same in both."""
    model = model.to(settings.device).eval()

    def work() -> None:
        with torch.inference_mode(), settings.autocast():
            upscale_batch(model, lr) if layout == "channels-last" else model(lr)

    return measure(work, lr.shape[0], 3, settings, [model])


def data_rows(pairs: int) -> list[Row]:
    """Generation and loading rates (no FLOPs: CPU work)."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for workers in (1, 2):
            rate = generation_rate(folder, pairs, workers)
            rows.append((f"synthetic generation, {workers} process(es)", rate, None))
        for workers in (0, 2):
            rate = loading_rate(folder / "gen-2", workers)
            rows.append((f"LMDB -> DataLoader, batch 64, {workers} workers", rate, None))
    return rows


def sr_rows(settings: Settings, paper_batch: int) -> list[Row]:
    """SR training with the MSE and with the text-focus loss, demo and paper sizes."""
    models = {
        "STN+EDSR demo": lambda: create_model("stn-edsr", "demo"),
        "TBSRN demo": lambda: create_model("tbsrn", "demo"),
        "STN+EDSR paper": lambda: create_model("stn-edsr", "paper"),
    }
    rows = []
    for name, build in models.items():
        size = "demo" if "demo" in name else "paper"
        batch = 16 if size == "demo" else paper_batch
        torch.manual_seed(SEED)
        measured = sr_training(build(), settings, batch)
        rows.append((f"SR training (MSE), {name}, batch {batch}", *measured))
        torch.manual_seed(SEED)
        guide = create_model("guide", size)
        measured = sr_training(build(), settings, batch, loss=TextFocusLoss(guide))
        rows.append((f"SR training (text-focus, {size} guide), {name}, batch {batch}", *measured))
    return rows


def sr_inference_rows(settings: Settings, batch: int = 128) -> list[Row]:
    """SR inference of the demo models with the input in each layout: the choice behind
    `upscale_batch`."""
    rows = []
    lr = torch.rand(batch, 3, 16, 64, device=settings.device)
    for name in ("stn-edsr", "tbsrn"):
        for layout in ("contiguous", "channels-last"):
            torch.manual_seed(SEED)
            measured = sr_inference(create_model(name, "demo"), settings, lr, layout)
            rows.append((f"SR inference, {name} demo, batch {batch}, {layout} input", *measured))
    return rows


def cdistnet_rows(settings: Settings, paper_batch: int) -> list[Row]:
    """CDistNet training, and reading greedy and with beam 10, demo and paper sizes."""
    rows = []
    for size, batch in (("demo", 32), ("paper", paper_batch)):
        torch.manual_seed(SEED)
        measured = cdistnet_training(size, settings, batch)
        rows.append((f"CDistNet training, {size}, batch {batch}", *measured))
        for beam in (1, 10):
            torch.manual_seed(SEED)
            measured = cdistnet_reading(size, settings, 4 * batch, beam)
            name = f"CDistNet reading, {size}, beam {beam}, {READ_STEPS} steps at most"
            rows.append((f"{name}, batch {4 * batch}", *measured))
    return rows


def pipeline_rows(settings: Settings, paper_batch: int) -> list[Row]:
    """SR+OCR inference (STN+EDSR then CDistNet, beam 10), demo and paper sizes."""
    rows = []
    for size, batch in (("demo", 4 * 32), ("paper", 4 * paper_batch)):
        torch.manual_seed(SEED)
        measured = pipeline_reading(size, settings, batch)
        name = f"SR+OCR reading, STN+EDSR + CDistNet {size}, beam 10, {READ_STEPS} steps at most"
        rows.append((f"{name}, batch {batch}", *measured))
    return rows


def table(rows: list[Row], peak: float | None, markdown: bool) -> list[str]:
    """The table's lines: rate, GFLOP per image, achieved TFLOP/s, fraction of the bf16 peak."""
    header = (
        "measurement",
        "images or pairs/s",
        "GFLOP per image",
        "achieved TFLOP/s",
        "fraction of bf16 peak",
    )
    cells = []
    for name, rate, flops in rows:
        achieved = None if flops is None else flops * rate
        cells.append(
            (
                name,
                f"{rate:.1f}",
                "-" if flops is None else f"{flops / 1e9:.3f}",
                "-" if achieved is None else f"{achieved / 1e12:.4f}",
                "-" if achieved is None or peak is None else f"{achieved / peak:.2%}",
            )
        )
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
        return lines + ["| " + " | ".join(row) + " |" for row in cells]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]
    return [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *cells]
    ]


def groups(text: str) -> list[str]:
    """The row groups of a comma-separated `--only` value, checked."""
    chosen = [group.strip() for group in text.split(",") if group.strip()]
    unknown = sorted(set(chosen) - set(GROUPS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown groups {unknown}; choose from {GROUPS}")
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=1000, help="pairs to generate per setting")
    parser.add_argument(
        "--paper-batch", type=int, default=2, help="batch for the paper-size models (GPU: 32+)"
    )
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (training, inference)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last layout")
    parser.add_argument("--compile", action="store_true", help="torch.compile (slow on the CPU)")
    parser.add_argument(
        "--only", type=groups, default=list(GROUPS), help=f"comma-separated groups of {GROUPS}"
    )
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    settings = Settings(device, args.bf16, args.channels_last, args.compile)
    peak_text, peak = peak_line(device)
    print(f"machine: {machine()}", flush=True)
    print(f"precision: {settings.describe()}; bf16 peak: {peak_text}", flush=True)
    rows = []
    if "data" in args.only:
        rows += data_rows(args.pairs)
    if "sr" in args.only:
        rows += sr_rows(settings, args.paper_batch)
    if "sr-inference" in args.only:
        rows += sr_inference_rows(settings)
    if "cdistnet" in args.only:
        rows += cdistnet_rows(settings, args.paper_batch)
    if "pipeline" in args.only:
        rows += pipeline_rows(settings, args.paper_batch)
    print("\n".join(table(rows, peak, args.markdown)))


if __name__ == "__main__":
    main()
