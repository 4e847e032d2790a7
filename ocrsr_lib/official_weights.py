"""Converters from official checkpoints (EDSR-PyTorch, CAR, TBSRN, ...) to the library's models.

Each converter infers the model size from the tensors, maps names and value ranges, and loads
strictly: a missing, unexpected or mis-shaped tensor is an error naming the keys and shapes.
Files are read with `weights_only=True`, so loading never runs pickled code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from ocrsr_lib.checkpoints import (
    CheckpointError,
    load_checkpoint,
    load_state_dict_strict,
    shape_of,
)
from ocrsr_lib.models.cdistnet import CDistNet, CDistNetConfig
from ocrsr_lib.models.edsr import EDSR, EDSRConfig
from ocrsr_lib.models.recognizer import RecognizerConfig, TextRecognizer
from ocrsr_lib.models.tbsrn import TBSRN, TBSRNConfig

StateDict = Mapping[str, torch.Tensor]


def strip_prefix(state_dict: StateDict, prefix: str) -> dict[str, torch.Tensor]:
    """Remove `prefix` (e.g. DataParallel's `module.`) from every key that has it."""
    return {k[len(prefix) :] if k.startswith(prefix) else k: v for k, v in state_dict.items()}


def _require(state_dict: StateDict, key: str, source: str) -> torch.Tensor:
    if key not in state_dict:
        raise CheckpointError(
            f"{source}: tensor {key!r} is missing; keys start with {sorted(state_dict)[:5]}"
        )
    return state_dict[key]


def edsr_config_from_state_dict(
    state_dict: StateDict, rgb_range: float, source: str, residual_scale: float | None = None
) -> EDSRConfig:
    """EDSR size from the tensors: blocks from `body.N.body.0`, features from the head conv.

    The residual scale is not stored: unless given, 0.1 for the 256-feature model and 1 for
    smaller ones, as EDSR-PyTorch trains them.
    """
    features = _require(state_dict, "head.0.weight", source).shape[0]
    block_pattern = re.compile(r"^body\.(\d+)\.body\.0\.weight$")
    blocks = sorted(int(m.group(1)) for k in state_dict if (m := block_pattern.match(k)))
    if blocks != list(range(len(blocks))):
        raise CheckpointError(f"{source}: residual blocks are not numbered 0..N-1: {blocks}")
    return EDSRConfig(
        residual_blocks=len(blocks),
        features=features,
        residual_scale=residual_scale
        if residual_scale is not None
        else (0.1 if features == 256 else 1.0),
        rgb_range=rgb_range,
    )


def edsr_from_state_dict(
    state_dict: StateDict, rgb_range: float, source: str, residual_scale: float | None = None
) -> EDSR:
    """An EDSR holding these EDSR-PyTorch-layout tensors (mean shift as stored)."""
    model = EDSR(edsr_config_from_state_dict(state_dict, rgb_range, source, residual_scale))
    load_state_dict_strict(model, state_dict, source)
    return model


def _load_edsr_pytorch(path: Path, residual_scale: float | None = None) -> nn.Module:
    """EDSR-PyTorch files: a bare state dict for inputs in [0, 255]."""
    state_dict = _plain_state_dict(load_checkpoint(path), str(path))
    return edsr_from_state_dict(state_dict, 255.0, str(path), residual_scale)


def _load_car_edsr(path: Path, residual_scale: float | None = 0.1) -> nn.Module:
    """CAR's usn.pth: DataParallel (`module.`) keys, inputs in [0, 1], residual scale 0.1."""
    state_dict = strip_prefix(_plain_state_dict(load_checkpoint(path), str(path)), "module.")
    return edsr_from_state_dict(state_dict, 1.0, str(path), residual_scale)


def _plain_state_dict(payload: object, source: str) -> dict[str, torch.Tensor]:
    """The tensor dictionary of a checkpoint that stores it bare."""
    if not isinstance(payload, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in payload.values()
    ):
        raise CheckpointError(f"{source}: expected a plain state dict of tensors")
    return dict(payload)


# Tensors the official TBSRN builds but never uses in its forward pass.
TBSRN_UNUSED = re.compile(r"^(conv|bn)\.|\.gru[12]\.|\.compress_attention_linear\.")


def tbsrn_from_state_dict(state_dict: StateDict, source: str) -> TBSRN:
    """A TBSRN holding official scene-text-telescope tensors (unused GRU/conv tensors dropped)."""
    state_dict = {
        k: v for k, v in strip_prefix(state_dict, "module.").items() if not TBSRN_UNUSED.search(k)
    }
    channels = _require(state_dict, "block1.0.weight", source).shape[0]
    blocks = {
        int(m.group(1))
        for k in state_dict
        if (m := re.match(r"^block(\d+)\.feature_enhancer\.", k))
    }
    use_stn = any(k.startswith("stn_head.") for k in state_dict)
    model = TBSRN(TBSRNConfig(residual_blocks=len(blocks), channels=channels, use_stn=use_stn))
    renamed = {
        ("stn." + k if k.startswith(("stn_head.", "tps.")) else k): v for k, v in state_dict.items()
    }
    load_state_dict_strict(model, renamed, source)
    return model


def _load_tbsrn(path: Path) -> nn.Module:
    payload = load_checkpoint(path)
    if isinstance(payload, Mapping) and "state_dict_G" in payload:
        payload = payload["state_dict_G"]
    return tbsrn_from_state_dict(_plain_state_dict(payload, str(path)), str(path))


# Tensors of the official guiding recognizer that its forward pass never uses.
RECOGNIZER_UNUSED = re.compile(r"\.compress_attention_linear\.")
RECOGNIZER_POSITION_CODE = "pe.pe"  # a fixed formula; checked against ours, then dropped


def recognizer_config_from_state_dict(
    state_dict: StateDict, source: str, heads: int = 16
) -> RecognizerConfig:
    """Recognizer size from the tensors; heads are not stored (16 in the official model)."""
    cnn = "encoder.cnn."
    stem = tuple(_require(state_dict, f"{cnn}conv{i}.weight", source).shape[0] for i in (1, 2))
    stage_channels, stage_blocks = [], []
    for stage in range(1, 5):
        stage_channels.append(
            _require(state_dict, f"{cnn}layer{stage}.0.conv1.weight", source).shape[0]
        )
        pattern = re.compile(rf"^{re.escape(cnn)}layer{stage}\.(\d+)\.conv1\.weight$")
        blocks = sorted(int(m.group(1)) for k in state_dict if (m := pattern.match(k)))
        if blocks != list(range(len(blocks))):
            raise CheckpointError(
                f"{source}: layer{stage} blocks are not numbered 0..N-1: {blocks}"
            )
        stage_blocks.append(len(blocks))
    code = _require(state_dict, RECOGNIZER_POSITION_CODE, source)
    return RecognizerConfig(
        stem_channels=stem,
        stage_channels=tuple(stage_channels),
        stage_blocks=tuple(stage_blocks),
        width=_require(state_dict, f"{cnn}layer4_conv2.weight", source).shape[0],
        heads=heads,
        feed_forward=_require(state_dict, "decoder.pff.w_1.weight", source).shape[0],
        max_positions=code.shape[1] if code.dim() == 3 else RecognizerConfig.max_positions,
    )


def recognizer_from_state_dict(
    state_dict: StateDict, source: str, heads: int = 16
) -> TextRecognizer:
    """A TextRecognizer holding official `pretrain_transformer.pth` tensors (`module.` or not).

    The unused `compress_attention_linear` tensors are dropped; the stored position code must
    equal the one the model computes.
    """
    state_dict = {
        k: v
        for k, v in strip_prefix(state_dict, "module.").items()
        if not RECOGNIZER_UNUSED.search(k)
    }
    model = TextRecognizer(recognizer_config_from_state_dict(state_dict, source, heads))
    stored = state_dict.pop(RECOGNIZER_POSITION_CODE)
    ours = model.pe.pe
    if shape_of(stored) != tuple(ours.shape) or not torch.allclose(stored, ours, atol=1e-4):
        raise CheckpointError(
            f"{source}: {RECOGNIZER_POSITION_CODE!r} {shape_of(stored)} is not the sinusoidal "
            f"position code {tuple(ours.shape)} the recognizer computes"
        )
    load_state_dict_strict(model, state_dict, source)
    return model


def _load_tbsrn_recognizer(path: Path, heads: int = 16) -> nn.Module:
    """`pretrain_transformer.pth`: the DataParallel state dict of the guiding recognizer."""
    state_dict = _plain_state_dict(load_checkpoint(path), str(path))
    return recognizer_from_state_dict(state_dict, str(path), heads)


# Buffers official CDistNet files save although they follow from the configuration.
CDISTNET_COMPUTED = re.compile(r"(\.pe|\.inv_delta_C|\.P_hat)$")


def _numbered(state_dict: StateDict, pattern: str, source: str) -> int:
    """How many modules `pattern` (with one group for the index) numbers 0..N-1."""
    compiled = re.compile(pattern)
    indices = sorted({int(m.group(1)) for k in state_dict if (m := compiled.match(k))})
    if not indices or indices != list(range(len(indices))):
        raise CheckpointError(f"{source}: modules matching {pattern!r} are numbered {indices}")
    return len(indices)


def cdistnet_config_from_state_dict(
    state_dict: StateDict, source: str, heads: int = 8
) -> CDistNetConfig:
    """CDistNet size from the tensors; heads are not stored (8 in the official model)."""
    backbone = "visual_branch.backbone."
    localization = "visual_branch.transform.LocalizationNetwork."
    channels = [_require(state_dict, f"{backbone}conv1.weight", source).shape[0]]
    blocks = []
    for stage in range(1, 6):
        channels.append(
            _require(state_dict, f"{backbone}layer{stage}.0.conv2.weight", source).shape[0]
        )
        blocks.append(
            _numbered(state_dict, rf"^{backbone}layer{stage}\.(\d+)\.conv1\.weight$", source)
        )
    code = state_dict.get("semantic_branch.positional_encoding.pe")
    encoder = "visual_branch.trans_encoder."
    return CDistNetConfig(
        width=_require(state_dict, "tgt_word_prj.weight", source).shape[1],
        heads=heads,
        encoder_feed_forward=_require(state_dict, f"{encoder}layers.0.conv1.weight", source).shape[
            0
        ],
        decoder_feed_forward=_require(
            state_dict, "mdcdp.layers_pos.0.linear1.weight", source
        ).shape[0],
        encoder_layers=_numbered(state_dict, rf"^{encoder}layers\.(\d+)\.norm1\.weight$", source),
        decoder_layers=_numbered(state_dict, r"^mdcdp\.layers_pos\.(\d+)\.norm2\.weight$", source),
        backbone_channels=tuple(channels),
        backbone_blocks=tuple(blocks),
        localization_channels=tuple(
            _require(state_dict, f"{localization}conv.{i}.weight", source).shape[0]
            for i in (0, 4, 8, 12)
        ),
        localization_hidden=_require(
            state_dict, f"{localization}localization_fc1.0.weight", source
        ).shape[0],
        fiducials=_require(state_dict, f"{localization}localization_fc2.weight", source).shape[0]
        // 2,
        max_positions=code.shape[0] if code is not None else CDistNetConfig.max_positions,
        unused_position_embedding=_require(state_dict, f"{encoder}pos_embeding", source).shape[0],
    )


def cdistnet_from_state_dict(state_dict: StateDict, source: str, heads: int = 8) -> CDistNet:
    """A CDistNet holding official tensors (`module.` tolerated).

    Stored position tables and TPS matrices must equal the ones the model computes (else the
    file was made for another image size or width); missing ones are simply recomputed.
    """
    state_dict = strip_prefix(state_dict, "module.")
    model = CDistNet(cdistnet_config_from_state_dict(state_dict, source, heads))
    computed = dict(model.named_buffers())
    for key in [k for k in state_dict if CDISTNET_COMPUTED.search(k)]:
        stored, ours = state_dict.pop(key), computed.get(key)
        if ours is None or shape_of(stored) != tuple(ours.shape):
            expected = None if ours is None else tuple(ours.shape)
            raise CheckpointError(
                f"{source}: {key!r} {shape_of(stored)} is not expected ({expected})"
            )
        if not torch.allclose(stored.float(), ours, atol=1e-4):
            raise CheckpointError(f"{source}: {key!r} differs from the one the model computes")
    load_state_dict_strict(model, state_dict, source)
    return model


def _load_cdistnet(path: Path, heads: int = 8) -> nn.Module:
    """An official CDistNet checkpoint: a plain state dict (`model.module.state_dict()`)."""
    state_dict = _plain_state_dict(load_checkpoint(path), str(path))
    return cdistnet_from_state_dict(state_dict, str(path), heads)


LOADERS: dict[str, Callable[..., nn.Module]] = {
    "edsr": _load_edsr_pytorch,
    "car-edsr": _load_car_edsr,
    "tbsrn": _load_tbsrn,
    "tbsrn-recognizer": _load_tbsrn_recognizer,
    "cdistnet": _load_cdistnet,
}


def load_official(kind: str, path: str | os.PathLike, **options) -> nn.Module:
    """The library's model holding an official checkpoint's weights, in eval mode.

    `options` go to the kind's converter (e.g. `residual_scale` for "edsr").
    """
    if kind not in LOADERS:
        raise ValueError(f"unknown official checkpoint kind {kind!r}; known: {sorted(LOADERS)}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    return LOADERS[kind](path, **options).eval()
