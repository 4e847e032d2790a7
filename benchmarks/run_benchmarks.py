"""Benchmarks: measured figures for the closing notes and the book's appendix (not tests).

Prints a table: synthetic TextZoom generation rate, LMDB loading rate through a DataLoader, and
SR training speed with the MSE and with the text-focus loss (the cost of the guide), CDistNet
training speed, and CDistNet reading speed greedy vs beam 10.
Run with `make bench` or `.venv/bin/python benchmarks/run_benchmarks.py [--pairs N]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ocrsr_lib.data import TextZoomDataset
from ocrsr_lib.data.synth import generate_split
from ocrsr_lib.losses import TextFocusLoss
from ocrsr_lib.models import EDSR, EDSR_CONFIGS, TBSRN, TBSRN_CONFIGS, RectifiedSR
from ocrsr_lib.models.cdistnet import (
    CDISTNET_CONFIGS,
    CDistNet,
    encode_targets,
    read_words,
    to_cdistnet_input,
)
from ocrsr_lib.models.recognizer import RECOGNIZER_CONFIGS, TextRecognizer
from ocrsr_lib.recognition import label_smoothed_cross_entropy

WORDS = ["street", "coffee", "open", "24", "exit", "bakery", "no", "parking"]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, torch {torch.__version__}"


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


def sr_training_rate(
    model: torch.nn.Module,
    batch_size: int = 16,
    steps: int = 8,
    loss: TextFocusLoss | None = None,
) -> float:
    """Images per second of SR training steps (forward, backward, Adam) on random pairs.

    The loss is the MSE, or a text-focus loss (its guide's weights do not change its cost).
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    lr = torch.rand(batch_size, 3, 16, 64, device=device)
    hr = torch.rand(batch_size, 3, 32, 128, device=device)
    words = [WORDS[i % len(WORDS)] for i in range(batch_size)]
    if loss is not None:
        loss.to(device)

    def step() -> None:
        if loss is None:
            value = torch.nn.functional.mse_loss(model(lr), hr)
        else:
            value = loss(model(lr), hr, words)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()

    return timed_rate(step, batch_size, steps)


def cdistnet_training_rate(size: str, batch_size: int, steps: int = 4) -> float:
    """Images per second of CDistNet training steps (official optimiser, smoothed loss)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = CDistNet(CDISTNET_CONFIGS[size]).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-9)
    images = to_cdistnet_input(torch.rand(batch_size, 3, 32, 128, device=device))
    targets = encode_targets([WORDS[i % len(WORDS)] for i in range(batch_size)], device=device)

    def step() -> None:
        loss = label_smoothed_cross_entropy(model(images, targets), targets[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    return timed_rate(step, batch_size, steps)


def cdistnet_reading_rate(size: str, batch_size: int, beam_size: int, repeats: int = 2) -> float:
    """Images per second of CDistNet decoding (greedy is beam 1) on random images; an untrained
    model runs to the step limit or stops early, so only compare beams within one table."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = CDistNet(CDISTNET_CONFIGS[size]).to(device).eval()
    images = torch.rand(batch_size, 3, 32, 128, device=device)
    return timed_rate(lambda: read_words(model, images, beam_size, 12), batch_size, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=1000, help="pairs to generate per setting")
    parser.add_argument(
        "--paper-batch", type=int, default=2, help="batch for the paper-size models (GPU: 32+)"
    )
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for workers in (1, 2):
            rate = generation_rate(folder, args.pairs, workers)
            rows.append((f"synthetic generation, {workers} process(es)", rate))
        for workers in (0, 2):
            rate = loading_rate(folder / "gen-2", workers)
            rows.append((f"LMDB -> DataLoader, batch 64, {workers} workers", rate))
    models = {
        "STN+EDSR demo": lambda: RectifiedSR(EDSR(EDSR_CONFIGS["demo"])),
        "TBSRN demo": lambda: TBSRN(TBSRN_CONFIGS["demo"]),
        "STN+EDSR paper": lambda: RectifiedSR(EDSR(EDSR_CONFIGS["paper"])),
    }
    for name, build in models.items():
        size = "demo" if "demo" in name else "paper"
        batch = 16 if size == "demo" else args.paper_batch
        rows.append((f"SR training (MSE), {name}, batch {batch}", sr_training_rate(build(), batch)))
        guide = TextRecognizer(RECOGNIZER_CONFIGS[size])
        rate = sr_training_rate(build(), batch, loss=TextFocusLoss(guide))
        rows.append((f"SR training (text-focus, {size} guide), {name}, batch {batch}", rate))
    for size, batch in (("demo", 32), ("paper", args.paper_batch)):
        rows.append(
            (f"CDistNet training, {size}, batch {batch}", cdistnet_training_rate(size, batch))
        )
        for beam in (1, 10):
            rate = cdistnet_reading_rate(size, 4 * batch, beam)
            rows.append((f"CDistNet reading, {size}, beam {beam}, 12 steps", rate))
    print(f"{'measurement':64s} {'pairs or images/s':>18s}")
    for name, rate in rows:
        print(f"{name:64s} {rate:18.1f}")


if __name__ == "__main__":
    main()
