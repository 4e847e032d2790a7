"""Which weights a quantization setting touches: the paper's layer types, found by the
official parameter names of STN + EDSR, TBSRN and CDistNet."""

from __future__ import annotations

import re
from collections.abc import Iterable

from torch import nn

from ocrsr_lib.quant.aciq import check_bits

# group -> name patterns (regular expressions on parameter names ending in ".weight")
LAYER_GROUPS: dict[str, tuple[str, ...]] = {
    # STN (TPS) in front of the SR models
    "stn-conv": (r"^stn\.stn_head\.stn_convnet\.\d+\.\d+\.weight$",),
    "stn-fc": (r"^stn\.stn_head\.stn_fc[12]\.(\d+\.)?weight$",),
    # EDSR
    "edsr-head": (r"^sr\.head\.\d+\.weight$",),
    "edsr-body": (r"^sr\.body\.\d+\.(body\.\d+\.)?weight$",),
    "edsr-tail": (r"^sr\.tail\.\d+\.(\d+\.)?weight$",),
    # TBSRN
    "tbsrn-conv": (r"^block[1-4]\.(.*\.)?conv[12]?\.weight$", r"^block[1-4]\.\d+\.weight$"),
    "tbsrn-attention": (r"^block\d+\.feature_enhancer\.multihead\.linears\.\d+\.weight$",),
    "tbsrn-feed-forward": (r"^block\d+\.feature_enhancer\.pff\.w_[12]\.weight$",),
    "tbsrn-linear": (r"^block\d+\.feature_enhancer\.linear\.weight$",),
    # CDistNet
    "localization-conv": (r"^visual_branch\.transform\.LocalizationNetwork\.conv\.\d+\.weight$",),
    "localization-fc": (
        r"^visual_branch\.transform\.LocalizationNetwork\.localization_fc[12]\.(\d+\.)?weight$",
    ),
    "backbone-conv": (
        r"^visual_branch\.backbone\..*conv\d?\.weight$",
        r"^visual_branch\.backbone\..*downsample\.0\.weight$",
    ),
    "encoder-self-attention": (
        r"^visual_branch\.trans_encoder\.layers\.\d+\.self_attn\..*weight$",
    ),
    "encoder-feed-forward": (r"^visual_branch\.trans_encoder\.layers\.\d+\.conv[12]\.weight$",),
    "embedding": (r"^semantic_branch\.embedding\.embedding\.weight$",),
    "positional-linear": (r"^positional_branch\.linear[12]\.weight$",),
    "decoder-self-attention": (r"^mdcdp\.layers_pos\.\d+\.multihead_attn\..*weight$",),
    "decoder-attention": (r"^mdcdp\.layers[23]\.\d+\.multihead_attn\..*weight$",),
    "decoder-feed-forward": (r"^mdcdp\.layers(_pos|2|3)\.\d+\.linear[12]\.weight$",),
    "fusion": (r"^mdcdp\.dynamic_shared_fusion\.w_att\.weight$",),
    "classifier": (r"^tgt_word_prj\.weight$",),
}

# the layer types the paper quantizes "without major loss", per model
PAPER_GROUPS: dict[str, tuple[str, ...]] = {
    "stn-edsr": ("stn-conv", "stn-fc", "edsr-head", "edsr-body"),
    "tbsrn": (
        "stn-conv",
        "stn-fc",
        "tbsrn-conv",
        "tbsrn-attention",
        "tbsrn-feed-forward",
        "tbsrn-linear",
    ),
    "cdistnet": (
        "localization-fc",
        "encoder-self-attention",
        "decoder-self-attention",
        "decoder-attention",
        "decoder-feed-forward",
        "positional-linear",
        "fusion",
    ),
}
# first and last weight layers: "8bit" keeps them at 8 bits at most (common practice and the
# default), "float" leaves them unquantized, "same" quantizes them like the rest
EDGE_POLICIES = ("8bit", "float", "same")


def group_of(name: str) -> str | None:
    """The layer group a parameter belongs to, or None (biases, norms, fixed layers)."""
    for group, patterns in LAYER_GROUPS.items():
        if any(re.match(pattern, name) for pattern in patterns):
            return group
    return None


def quantization_plan(
    model: nn.Module,
    groups: Iterable[str],
    bits: int,
    edges: str = "8bit",
    idle: Iterable[str] = (),
) -> dict[str, int]:
    """Parameter name -> bit width for every weight of the chosen groups that the forward uses
    (`idle` names those it never reads: `models.idle_parameter_names`); the first and last of
    the used grouped weights follow the `edges` policy.

    Explained in chapter 5.
    """
    groups = tuple(groups)
    unknown = sorted(set(groups) - set(LAYER_GROUPS))
    if unknown:
        raise ValueError(f"unknown layer groups {unknown}; choose from {sorted(LAYER_GROUPS)}")
    if edges not in EDGE_POLICIES:
        raise ValueError(f"unknown edge policy {edges!r}; choose one of {EDGE_POLICIES}")
    check_bits(bits)
    idle = set(idle)
    grouped = [
        name
        for name, _ in model.named_parameters()
        if group_of(name) is not None and name not in idle
    ]
    edge_names = {grouped[0], grouped[-1]} if grouped else set()
    plan = {}
    for name in grouped:
        if group_of(name) not in groups:
            continue
        if name in edge_names and edges == "float":
            continue
        plan[name] = max(bits, 8) if name in edge_names and edges == "8bit" else bits
    return plan


def groups_in(model: nn.Module) -> list[str]:
    """The layer groups that have weights in this model, in LAYER_GROUPS order."""
    present = {group_of(name) for name, _ in model.named_parameters()}
    return [group for group in LAYER_GROUPS if group in present]
