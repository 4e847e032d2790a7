"""SR -> OCR pipelines: which trained runs make them, what their CDistNet reads (beam search,
`BeamReader`) and how well, and how they fare quantized (`QuantSetting`: PSNR, accuracy and
size of the pipeline with its SR model, its CDistNet or both quantized). Table 1's five
pipelines, Table 2's rows, the quantization explorer and the command line's `evaluate` and
`quantize` all go through here; readings and evaluations are cached under the keys of the
trained runs they use, so a retrained model is never scored from a stale file."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ocrsr_lib.config import Session
from ocrsr_lib.data import first_items, scoring_splits, split_labels
from ocrsr_lib.evaluation import (
    IMAGE_SOURCES,
    accuracy_of,
    read_image_stack,
    read_split,
    with_average,
)
from ocrsr_lib.metrics import psnr
from ocrsr_lib.models import JointSR, idle_parameter_names
from ocrsr_lib.models.cdistnet import CDistNet
from ocrsr_lib.models.upscale_batch import upscale_batch
from ocrsr_lib.quant.apply import QuantizedModel, quantize_model, weight_error
from ocrsr_lib.quant.layers import EDGE_POLICIES, LAYER_GROUPS, PAPER_GROUPS, quantization_plan
from ocrsr_lib.quant.quantizers import QuantSpec
from ocrsr_lib.quant.size import ModelSize, theoretical_size
from ocrsr_lib.runs import run_key, trained
from ocrsr_lib.runs.data import text_train_and_validation
from ocrsr_lib.runs.sr import evaluation_identity, sr_architecture

BEAM_SIZE = 10  # the paper configuration's beam width, used for every reported reading

# Table 1's pipelines: row -> (the images CDistNet reads, the CDistNet recipe reading them)
TABLE_1_PIPELINES: dict[str, tuple[str, str]] = {
    "TBSRN + CDistNet (HR-fine-tuned)": ("tbsrn-text-focus", "finetune-hr"),
    "TBSRN + CDistNet (SR-fine-tuned)": ("tbsrn-text-focus", "finetune-tbsrn-text-focus"),
    "EDSR + CDistNet (HR-fine-tuned)": ("stn-edsr-text-focus", "finetune-hr"),
    "EDSR + CDistNet (SR-fine-tuned)": ("stn-edsr-text-focus", "finetune-stn-edsr-text-focus"),
    "bicubic + CDistNet (fine-tuned)": ("bicubic", "finetune-bicubic"),
}


class BeamReader(nn.Module):
    """A CDistNet whose `.read` decodes with a fixed beam width (what `read_split` calls)."""

    def __init__(self, model: CDistNet, beam_size: int) -> None:
        super().__init__()
        self.model, self.beam_size = model, beam_size

    def read(self, images: torch.Tensor) -> list[str]:
        return self.model.read(images, self.beam_size)


def images_key(session: Session, images: str) -> str:
    """An image source as a key part: "hr", "bicubic", "lr", or the SR run's key (marked when
    its STN rectifies at evaluation)."""
    if images in IMAGE_SOURCES:
        return images
    identity = evaluation_identity(session, images)
    rectified = "-stn" if identity["stn_at_evaluation"] else ""
    return f"{images}-{identity['run']}{rectified}"


def readings_artifact(
    session: Session, name: str, images: str, beam_size: int
) -> tuple[str, str, dict]:
    """(kind, name, key parts) of cached readings: the reader's run, the images, the beam and
    the words scored determine them."""
    parts = {
        "reader": run_key(session, name),
        "images": images_key(session, images),
        "beam": beam_size,
        "test_words": session.profile.test_words,
    }
    return "tables", f"readings-{name}-{images}", parts


def readings_file(session: Session, name: str, images: str, beam_size: int = BEAM_SIZE) -> Path:
    """Where `cdistnet_readings` caches its result."""
    return session.cache.file(*readings_artifact(session, name, images, beam_size))


def sr_model_of(session: Session, name: str) -> nn.Module:
    """The SR model of a trained run: an SR recipe's model, or a joint run's SR part."""
    model = trained(session, name).model
    return model.sr if isinstance(model, JointSR) else model


def reader_of(session: Session, name: str) -> nn.Module:
    """The CDistNet of a trained run: a CDistNet recipe's model, or a joint run's reader."""
    model = trained(session, name).model
    return model.ocr if isinstance(model, JointSR) else model


def cdistnet_readings(
    session: Session, name: str, images: str, beam_size: int = BEAM_SIZE
) -> dict[str, list[str]]:
    """What CDistNet recipe `name` reads from `images` ("hr", "bicubic", "lr" or an SR recipe)
    on each scored test split (`scoring_splits`), in split order; computed once, then cached."""

    def compute() -> dict:
        reader = BeamReader(reader_of(session, name).to(session.device), beam_size)
        if images in IMAGE_SOURCES:
            return {
                split: read_split(reader, data, images, session.device)[0]
                for split, data in scoring_splits(session).items()
            }
        return {
            split: read_image_stack(reader, stack, session.device)
            for split, stack in sr_images(session, images).items()
        }

    artifact = readings_artifact(session, name, images, beam_size)
    return session.cache.get_or_compute(*artifact, compute)


@torch.no_grad()
def upscale_split(
    model: nn.Module, split: Dataset, device: torch.device | str, batch_size: int = 128
) -> torch.Tensor:
    """A model's SR images of a split, (N, C, 2H, 2W) float32 on the CPU, in split order."""
    model.to(device).eval()
    batches = [
        upscale_batch(model, lr.to(device)).float().cpu().contiguous()
        for lr, _, _ in DataLoader(split, batch_size=batch_size)
    ]
    if not batches:
        raise ValueError("cannot upscale an empty split")
    return torch.cat(batches)


def sr_images(session: Session, name: str, data: str = "test") -> dict[str, torch.Tensor]:
    """SR recipe `name`'s images of each scored test split (or of the validation words,
    `data`) (`upscale_split`): one pass, cached under the run's key, serves every reading, PSNR
    and figure of those images."""

    def compute() -> dict:
        model = sr_model_of(session, name)
        return {
            split: upscale_split(model, images, session.device)
            for split, images in evaluation_splits(session, data, None).items()
        }

    parts = {"sr": images_key(session, name), "test_words": session.profile.test_words}
    if data != "test":  # test images keep their earlier cache names
        parts["data"] = data
    return session.cache.get_or_compute("tables", f"sr-images-{name}", parts, compute)


def pipeline_accuracy(session: Session, images: str, name: str) -> dict[str, float]:
    """Word accuracy of CDistNet recipe `name` reading `images`, per test split and on average
    (weighted by split size, as TextZoom averages)."""
    test = scoring_splits(session)
    readings = cdistnet_readings(session, name, images)
    return with_average({s: accuracy_of(readings[s], split_labels(test[s])) for s in test}, test)


def table_1(session: Session) -> dict[str, dict[str, float]]:
    """The paper's Table 1 as this session measures it: every pipeline's accuracy per
    difficulty and on average (trains and reads whatever is not cached yet).

    Explained in chapter 4.
    """
    return {
        row: pipeline_accuracy(session, images, name)
        for row, (images, name) in TABLE_1_PIPELINES.items()
    }


@dataclass(frozen=True)
class Pipeline:
    """The trained SR model and the CDistNet fine-tuned on its output (names of recipes)."""

    sr: str = "stn-edsr-text-focus"
    ocr: str = "finetune-stn-edsr-text-focus"


EDSR_PIPELINE = Pipeline()
TBSRN_PIPELINE = Pipeline("tbsrn-text-focus", "finetune-tbsrn-text-focus")
# one stage instead of two: SR model and CDistNet trained together (`runs.joint`)
JOINT_PIPELINE = Pipeline("joint-stn-edsr-text-focus", "joint-stn-edsr-text-focus")
PIPELINES = {"edsr": EDSR_PIPELINE, "tbsrn": TBSRN_PIPELINE}
TARGETS = ("none", "sr", "ocr", "sr+ocr")


@dataclass(frozen=True)
class QuantSetting:
    """Which model(s) of a pipeline to quantize and how; groups default to the paper's."""

    target: str = "none"
    bits: int = 8
    method: str = "aciq-mix"
    granularity: str = "channel"
    bias_correction: bool = False
    bit_allocation: bool = False
    edges: str = "8bit"
    sr_groups: tuple[str, ...] | None = None
    ocr_groups: tuple[str, ...] | None = None

    def targets(self, model: str) -> bool:
        """Whether the setting quantizes the pipeline's "sr" or "ocr" model."""
        return self.target in (model, "sr+ocr")

    def __post_init__(self) -> None:
        """Refuse an impossible setting when it is made, before anything is trained."""
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; choose one of {TARGETS}")
        # the weights' spec checks bits, method, granularity and bit allocation
        QuantSpec(self.bits, self.method, self.granularity, bit_allocation=self.bit_allocation)
        if self.edges not in EDGE_POLICIES:
            raise ValueError(f"unknown edge policy {self.edges!r}; choose one of {EDGE_POLICIES}")
        for groups in (self.sr_groups, self.ocr_groups):
            unknown = sorted(set(groups or ()) - set(LAYER_GROUPS))
            if unknown:
                raise ValueError(f"unknown layer groups {unknown}; known: {list(LAYER_GROUPS)}")


def sr_kind(session: Session, pipeline: Pipeline) -> str:
    """ "stn-edsr" or "tbsrn": which of the paper's layer selections applies to the SR model."""
    return sr_architecture(session, pipeline.sr)


def quantize_target(
    model: nn.Module, setting: QuantSetting, kind: str, groups: tuple[str, ...] | None
) -> QuantizedModel:
    """The model quantized by `setting` (an empty plan, i.e. unchanged, if not targeted)."""
    targeted = setting.targets("ocr" if kind == "cdistnet" else "sr")
    chosen = PAPER_GROUPS[kind] if groups is None else groups
    idle = idle_parameter_names(kind, model)
    plan = quantization_plan(model, chosen, setting.bits, setting.edges, idle) if targeted else {}
    return quantize_model(
        model,
        plan,
        setting.method,
        setting.granularity,
        setting.bias_correction,
        setting.bit_allocation,
        idle,
    )


def pipeline_models(session: Session, pipeline: Pipeline) -> tuple[nn.Module, nn.Module]:
    """The pipeline's trained (SR, OCR) models, unquantized."""
    return sr_model_of(session, pipeline.sr), reader_of(session, pipeline.ocr)


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


# what an evaluation reads: the scored test splits (what is reported), or the validation words
# held out of the training split (what every choice, such as Table 2's bit widths, is made on)
EVALUATION_DATA = ("test", "validation")


def evaluation_splits(session: Session, data: str, words: int | None) -> dict[str, Dataset]:
    """The splits an evaluation of `data` reads, each cut to its first `words` (all if None)."""
    if data == "test":
        splits = scoring_splits(session)
    elif data == "validation":
        splits = {"validation": text_train_and_validation(session)[1]}
    else:
        raise ValueError(f"unknown evaluation data {data!r}; choose one of {EVALUATION_DATA}")
    return {name: first_items(split, words) for name, split in splits.items()}


def evaluation_artifact(
    session: Session,
    setting: QuantSetting,
    pipeline: Pipeline,
    beam: int,
    words: int | None,
    data: str = "test",
) -> tuple[str, str, dict]:
    """(kind, name, key parts) of a cached evaluation: the setting, both runs, the beam, the
    data and the words read determine it."""
    parts = {
        "setting": asdict(setting),
        "sr": images_key(session, pipeline.sr),
        "ocr": run_key(session, pipeline.ocr),
        "beam": beam,
        "words": words,
        "test_words": session.profile.test_words,
    }
    if data != "test":  # test evaluations keep their earlier cache names
        parts["data"] = data
    return "tables", f"quantized-{pipeline.sr}", parts


def setting_images(
    session: Session,
    setting: QuantSetting,
    pipeline: Pipeline,
    sr_model: nn.Module,
    splits: dict[str, Dataset],
    data: str = "test",
) -> dict[str, torch.Tensor]:
    """The SR images of each split under `setting`: the float model's cached ones
    (`sr_images`) when the setting leaves the SR model float; else computed."""
    if not setting.targets("sr"):
        cached = sr_images(session, pipeline.sr, data)
        return {name: cached[name][: len(split)] for name, split in splits.items()}
    return {name: upscale_split(sr_model, split, session.device) for name, split in splits.items()}


def setting_readings(
    session: Session,
    setting: QuantSetting,
    pipeline: Pipeline,
    ocr_model: nn.Module,
    images: dict[str, torch.Tensor],
    beam: int,
    words: int | None,
    data: str = "test",
) -> dict[str, list[str]]:
    """What the pipeline's CDistNet reads in `images` under `setting`: the float pipeline's
    cached readings (`cdistnet_readings`) when nothing is quantized and every test word is
    read."""
    if setting.target == "none" and words is None and data == "test":
        return cdistnet_readings(session, pipeline.ocr, pipeline.sr, beam)
    reader = BeamReader(ocr_model, beam)
    return {name: read_image_stack(reader, stack, session.device) for name, stack in images.items()}


def hr_stack(split: Dataset) -> torch.Tensor:
    """A split's HR images as one (N, C, H, W) tensor, in split order."""
    return torch.stack([split[index][1] for index in range(len(split))])


def evaluate_setting(
    session: Session,
    setting: QuantSetting,
    pipeline: Pipeline = EDSR_PIPELINE,
    beam: int = 1,
    words: int | None = None,
    data: str = "test",
) -> dict:
    """PSNR (mean and per image), accuracy per difficulty and average and the words read,
    size (megabits and megabytes: the paper's
    theoretical size of every stored parameter, and of those that run), quantized and idle
    parameter counts, and relative weight error of the pipeline under `setting`, on the test
    splits or the validation words (`data`); computed once, then read from the cache.

    Explained in chapter 5.
    """

    def compute() -> dict:
        models = pipeline_models(session, pipeline)
        sr, ocr = quantize_pipeline(session, setting, pipeline, models)
        test = evaluation_splits(session, data, words)
        images = setting_images(session, setting, pipeline, sr.model, test, data)
        read = setting_readings(session, setting, pipeline, ocr.model, images, beam, words, data)
        psnr_values = torch.cat(
            [psnr(images[name], hr_stack(split)) for name, split in test.items()]
        )
        size: ModelSize = sr.size() + ocr.size()
        running: ModelSize = sr.running_size() + ocr.running_size()
        return {
            "psnr": psnr_values.mean().item(),
            "psnr_per_image": psnr_values.tolist(),
            "readings": read,
            "accuracy": with_average(
                {
                    name: accuracy_of(read[name], split_labels(split))
                    for name, split in test.items()
                },
                test,
            ),
            "megabits": size.megabits,
            "megabytes": size.megabytes,
            "running_megabits": running.megabits,
            "running_megabytes": running.megabytes,
            "quantized_parameters": sum(
                weight.values().numel() for part in (sr, ocr) for weight in part.weights.values()
            ),
            "idle_parameters": sum(
                dict(part.model.named_parameters())[name].numel()
                for part in (sr, ocr)
                for name in part.idle
            ),
            "weight_error": {
                "sr": weight_error(models[0], sr),
                "ocr": weight_error(models[1], ocr),
            },
        }

    artifact = evaluation_artifact(session, setting, pipeline, beam, words, data)
    return session.cache.get_or_compute(*artifact, compute)


def float_size(session: Session, pipeline: Pipeline = EDSR_PIPELINE) -> ModelSize:
    """The unquantized pipeline's size (every parameter at 32 bits)."""
    sr_model, ocr_model = pipeline_models(session, pipeline)
    return theoretical_size(sr_model) + theoretical_size(ocr_model)
