"""The text-focus loss of Scene Text Telescope: pixels, where the recognizer looks, what it reads.

    loss = MSE(SR, HR)
         + lambda_position * L1(attention on HR, attention on SR)
         + lambda_content  * weighted cross-entropy(recognizer logits on SR, label)

A frozen guiding recognizer reads SR and HR with teacher forcing. Its cross-attention maps
locate each character (the position-aware term); its logits on SR, under a cross-entropy that
weights confusable characters more, say what was read (the content-aware term).
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ocrsr_lib.models.guide import (
    ALPHABET,
    TextRecognizer,
    encode_labels,
    to_recognizer_input,
)

SYMBOLS = len(ALPHABET)  # 37: '-' (start and end), digits, lower-case letters


@dataclass(frozen=True)
class TextFocusWeights:
    """Term weights; the defaults are the official ones (10 and 0.0005, loss not scaled)."""

    mse: float = 1.0
    position: float = 10.0
    content: float = 0.0005
    scale: float = 1.0  # the official training loop multiplies the loss by 100

    def __post_init__(self) -> None:
        if min(self.mse, self.position, self.content) < 0 or self.scale <= 0:
            raise ValueError(f"term weights must be >= 0 and the scale > 0: {self}")


def weighted_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weight_table: torch.Tensor
) -> torch.Tensor:
    """Mean over characters of -log(w[t,t] e^z_t / sum_j w[t,j] e^z_j), t the true symbol.

    Row t of `weight_table` scales how strongly each wrong symbol j competes with t; with all
    weights 1 this is the plain cross-entropy. Computed in log space (no overflow), no loops.
    """
    if logits.dim() != 2 or logits.shape[0] != targets.shape[0]:
        raise ValueError(
            f"logits (N, symbols) and targets (N,) disagree: {tuple(logits.shape)} vs "
            f"{tuple(targets.shape)}"
        )
    if weight_table.shape != (logits.shape[1], logits.shape[1]):
        raise ValueError(
            f"weight table must be {logits.shape[1]}x{logits.shape[1]}, "
            f"got {tuple(weight_table.shape)}"
        )
    weighted = logits + weight_table.to(logits.device, logits.dtype)[targets].log()
    return (weighted.logsumexp(dim=1) - weighted.gather(1, targets[:, None]).squeeze(1)).mean()


def confusion_counts(
    logits: torch.Tensor, targets: torch.Tensor, symbols: int = SYMBOLS
) -> torch.Tensor:
    """(symbols, symbols) counts: row = true symbol, column = the recognizer's arg-max."""
    predicted = logits.argmax(dim=1)
    flat = targets * symbols + predicted
    return torch.bincount(flat, minlength=symbols * symbols).view(symbols, symbols)


def weights_from_confusions(counts: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """Weight table 1 + strength * P(read j | true i) off the diagonal, 1 on it.

    Symbols the recognizer mistakes for each other (on LR or bicubic images) get weights above
    1, so the content term pushes harder against exactly those confusions.
    """
    if counts.dim() != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion counts must be square, got {tuple(counts.shape)}")
    counts = counts.double()
    rates = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)
    rates.fill_diagonal_(0)
    return (1 + strength * rates).float()


def most_confused(counts: torch.Tensor, top: int = 10) -> list[tuple[str, str, int, float]]:
    """The `top` off-diagonal confusions as (true, read, count, rate of the true symbol's reads)."""
    if counts.dim() != 2 or counts.shape != (SYMBOLS, SYMBOLS):
        raise ValueError(f"confusion counts must be {SYMBOLS}x{SYMBOLS}, got {tuple(counts.shape)}")
    off = counts.clone().fill_diagonal_(0)
    rates = counts.double() / counts.sum(dim=1, keepdim=True).clamp(min=1)
    order = off.flatten().argsort(descending=True, stable=True)[:top]
    pairs = [(int(i) // SYMBOLS, int(i) % SYMBOLS) for i in order if off.flatten()[i] > 0]
    return [(ALPHABET[t], ALPHABET[r], int(counts[t, r]), float(rates[t, r])) for t, r in pairs]


def official_weight_table(confuse: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The official 37x37 table from a `confuse.pkl` matrix (62x62: digits, upper, lower).

    As the official loader does: reorder to '-', digits, lower, upper (the end symbol and the
    padding column are ones), invert, set infinities to 1, give each lower-case column the
    larger of its lower- and upper-case weights (off the diagonal), keep the first 37 symbols.
    """
    data = torch.as_tensor(np.asarray(confuse), dtype=torch.float64)
    if data.shape != (62, 62):
        raise ValueError(f"an official confusion matrix is 62x62, got {tuple(data.shape)}")
    rows = torch.cat([torch.ones(1, 62, dtype=data.dtype), data[:10], data[36:], data[10:36]])
    table = torch.cat([torch.ones(63, 1, dtype=data.dtype), rows], dim=1)
    table = 1 / table
    table[torch.isinf(table)] = 1
    lower = slice(11, 37)  # columns of a..z; their upper-case twins are 26 further on
    merged = torch.maximum(table[:, lower], table[:, 37:63])
    off_diagonal = ~torch.eye(63, dtype=torch.bool)[:, lower]
    table[:, lower] = torch.where(off_diagonal, merged, table[:, lower])
    return table[:SYMBOLS, :SYMBOLS].float()


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else, so a confusion file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a confusion file")
        return super().find_class(module, name)


def load_official_confusion(path: str) -> torch.Tensor:
    """The weight table from the official `confuse.pkl` (numpy arrays only are unpickled)."""
    with open(path, "rb") as file:
        data = _NumpyOnlyUnpickler(file).load()
    return official_weight_table(np.asarray(data, dtype=np.float64))


def freeze(recognizer: nn.Module) -> nn.Module:
    """Eval mode and no parameter gradients: the guide is a fixed judge, not a learner."""
    recognizer.eval()
    for parameter in recognizer.parameters():
        parameter.requires_grad_(False)
    return recognizer


class TextFocusLoss(nn.Module):
    """MSE + position-aware + content-aware terms; callable as loss(sr, hr, labels).

    Terms with weight 0 are not computed (ablations cost nothing). After each call,
    `last_terms` holds the unweighted values of the computed terms; `total_and_terms` gives
    the weighted ones with the total, which is what the training loop logs.

    Explained in chapter 3.
    """

    def __init__(
        self,
        recognizer: TextRecognizer,
        weight_table: torch.Tensor | None = None,
        weights: TextFocusWeights = TextFocusWeights(),
    ) -> None:
        super().__init__()
        self.recognizer = freeze(recognizer)
        table = torch.ones(SYMBOLS, SYMBOLS) if weight_table is None else weight_table
        if table.shape != (SYMBOLS, SYMBOLS):
            raise ValueError(f"weight table must be {SYMBOLS}x{SYMBOLS}, got {tuple(table.shape)}")
        self.register_buffer("weight_table", table.float())
        self.weights = weights
        self.last_terms: dict[str, float] = {}

    def train(self, mode: bool = True) -> TextFocusLoss:
        """The recognizer stays in eval mode whatever the caller asks."""
        super().train(mode)
        self.recognizer.eval()
        return self

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, labels: Sequence[str]) -> torch.Tensor:
        """The total loss alone, for callers that only minimize it."""
        return self.total_and_terms(sr, hr, labels)[0]

    def total_and_terms(
        self, sr: torch.Tensor, hr: torch.Tensor, labels: Sequence[str]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total and each term as it enters it (weighted, scaled, detached), for logging.

        The total is scale * (sum of the weighted terms), in that order; the logged terms add up
        to it up to rounding.
        """
        terms = self.terms(sr, hr, labels)
        self.last_terms = {name: value.item() for name, value in terms.items()}
        weighted = {name: getattr(self.weights, name) * value for name, value in terms.items()}
        total = self.weights.scale * sum(weighted.values())
        scaled = {name: self.weights.scale * value.detach() for name, value in weighted.items()}
        return total, scaled

    def terms(
        self, sr: torch.Tensor, hr: torch.Tensor, labels: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        """The unweighted value of every switched-on term ("mse", "position", "content")."""
        weights = self.weights
        terms: dict[str, torch.Tensor] = {}
        if weights.mse:
            terms["mse"] = F.mse_loss(sr[:, :3], hr[:, :3])
        if weights.position or weights.content:
            length, decoder_input, targets = encode_labels(labels, device=sr.device)
            sr_read = self.recognizer(to_recognizer_input(sr), length, decoder_input)
            if weights.position:
                with torch.no_grad():
                    hr_read = self.recognizer(to_recognizer_input(hr), length, decoder_input)
                terms["position"] = F.l1_loss(sr_read.attention, hr_read.attention)
            if weights.content:
                terms["content"] = weighted_cross_entropy(
                    sr_read.logits, targets, self.weight_table
                )
        if not terms:
            raise ValueError("every term of the text-focus loss is switched off")
        return terms

    def term_gradients(
        self, sr: torch.Tensor, hr: torch.Tensor, labels: Sequence[str]
    ) -> dict[str, dict[str, float]]:
        """Each switched-on term's weighted value and the norm of its gradient on the SR image.

        Values say what the loss curve shows; gradient norms say how hard each term actually
        pushes the SR model (the balance of the terms).
        """
        sr = sr.detach().requires_grad_(True)
        report = {}
        for name, value in self.terms(sr, hr, labels).items():
            weighted = self.weights.scale * getattr(self.weights, name) * value
            (gradient,) = torch.autograd.grad(weighted, sr, retain_graph=True)
            report[name] = {"value": weighted.item(), "gradient norm": gradient.norm().item()}
        return report
