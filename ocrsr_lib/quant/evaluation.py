"""Quantized pipelines measured as in the paper's Table 2: SR PSNR, CDistNet word accuracy per
difficulty and the pipeline's size, for a quantization setting of the SR model, the OCR model
or both. Results are cached per setting and per trained models."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ocrsr_lib.cdistnet_recipes import BeamReader, cdistnet_key, trained_cdistnet
from ocrsr_lib.checkpoints import load_checkpoint, save_checkpoint
from ocrsr_lib.config import Session
from ocrsr_lib.data import first_items, scoring_splits
from ocrsr_lib.metrics import evaluate_sr
from ocrsr_lib.quant.apply import QuantizedModel, quantize_model, weight_error
from ocrsr_lib.quant.layers import PAPER_GROUPS, quantization_plan
from ocrsr_lib.quant.size import ModelSize, theoretical_size
from ocrsr_lib.reading import accuracy_of, read_split, with_average
from ocrsr_lib.recipes import recipe_for, recipe_key, short_hash, trained_sr

TARGETS = ("none", "sr", "ocr", "sr+ocr")


@dataclass(frozen=True)
class QuantSetting:
    """Which model(s) to quantize and how; groups default to the paper's layer types."""

    target: str = "none"
    bits: int = 8
    method: str = "aciq-mix"
    granularity: str = "channel"
    bias_correction: bool = False
    bit_allocation: bool = False
    edges: str = "8bit"
    sr_groups: tuple[str, ...] | None = None
    ocr_groups: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; choose one of {TARGETS}")


@dataclass(frozen=True)
class Pipeline:
    """The trained SR model and the CDistNet fine-tuned on its output (names of recipes)."""

    sr: str = "stn-edsr-text-focus"
    ocr: str = "finetune-stn-edsr-text-focus"


EDSR_PIPELINE = Pipeline()
TBSRN_PIPELINE = Pipeline("tbsrn-text-focus", "finetune-tbsrn-text-focus")


def sr_kind(session: Session, pipeline: Pipeline) -> str:
    """ "stn-edsr" or "tbsrn": which of the paper's layer selections applies to the SR model."""
    return recipe_for(session, pipeline.sr).model


def quantize_target(
    model: nn.Module, setting: QuantSetting, kind: str, groups: tuple[str, ...] | None
) -> QuantizedModel:
    """The model quantized by `setting` (an empty plan, i.e. unchanged, if not targeted)."""
    targeted = setting.target == "sr+ocr" or setting.target == (
        "ocr" if kind == "cdistnet" else "sr"
    )
    chosen = PAPER_GROUPS[kind] if groups is None else groups
    plan = quantization_plan(model, chosen, setting.bits, setting.edges) if targeted else {}
    return quantize_model(
        model,
        plan,
        setting.method,
        setting.granularity,
        setting.bias_correction,
        setting.bit_allocation,
    )


def pipeline_models(session: Session, pipeline: Pipeline) -> tuple[nn.Module, nn.Module]:
    """The pipeline's trained (SR, OCR) models, unquantized."""
    return trained_sr(session, pipeline.sr).model, trained_cdistnet(session, pipeline.ocr).model


def quantize_pipeline(
    session: Session, setting: QuantSetting, pipeline: Pipeline, models: tuple[nn.Module, nn.Module]
) -> tuple[QuantizedModel, QuantizedModel]:
    """(SR, OCR) copies of the given models, each quantized if the setting targets it."""
    sr_model, ocr_model = models
    sr = quantize_target(sr_model, setting, sr_kind(session, pipeline), setting.sr_groups)
    ocr = quantize_target(ocr_model, setting, "cdistnet", setting.ocr_groups)
    return sr, ocr


def quantized_pipeline(
    session: Session, setting: QuantSetting, pipeline: Pipeline = EDSR_PIPELINE
) -> tuple[QuantizedModel, QuantizedModel]:
    """(SR, OCR) of the pipeline, each quantized if the setting targets it."""
    return quantize_pipeline(session, setting, pipeline, pipeline_models(session, pipeline))


def evaluation_path(session: Session, setting: QuantSetting, pipeline: Pipeline, beam: int, words):
    parts = {
        "setting": asdict(setting),
        "sr": recipe_key(session, pipeline.sr),
        "ocr": cdistnet_key(session, pipeline.ocr),
        "beam": beam,
        "words": words,
        "test_words": session.profile.test_words,
    }
    return session.path("tables") / f"quantized-{pipeline.sr}-{short_hash(parts)}.pt"


def evaluate_setting(
    session: Session,
    setting: QuantSetting,
    pipeline: Pipeline = EDSR_PIPELINE,
    beam: int = 1,
    words: int | None = None,
) -> dict:
    """PSNR, accuracy per difficulty and average, size (megabits and megabytes) and relative
    weight error of the pipeline under `setting`; computed once, then read from the cache."""
    path = evaluation_path(session, setting, pipeline, beam, words)
    if path.is_file():
        return load_checkpoint(path)
    models = pipeline_models(session, pipeline)
    sr, ocr = quantize_pipeline(session, setting, pipeline, models)
    test = {name: first_items(split, words) for name, split in scoring_splits(session).items()}
    device = session.device
    sr_model, ocr_model = sr.model.to(device).eval(), ocr.model.to(device).eval()
    with torch.no_grad():
        psnr = evaluate_sr(sr_model, test, device)["average"]["psnr"]
        reader = BeamReader(ocr_model, beam)
        accuracy = {
            name: accuracy_of(*read_split(reader, split, sr_model, device))
            for name, split in test.items()
        }
    size: ModelSize = sr.size() + ocr.size()
    result = {
        "psnr": psnr,
        "accuracy": with_average(accuracy, test),
        "megabits": size.megabits,
        "megabytes": size.megabytes,
        "weight_error": {"sr": weight_error(models[0], sr), "ocr": weight_error(models[1], ocr)},
    }
    save_checkpoint(path, result)
    return result


def float_size(session: Session, pipeline: Pipeline = EDSR_PIPELINE) -> ModelSize:
    """The unquantized pipeline's size (every parameter at 32 bits)."""
    sr_model, ocr_model = pipeline_models(session, pipeline)
    return theoretical_size(sr_model) + theoretical_size(ocr_model)
