"""Quantizing whole models: layer groups and plans, size accounting, packed checkpoints."""

import re

import pytest
import torch
from torch import nn

from ocrsr_lib.models import (
    EDSR,
    EDSR_CONFIGS,
    TBSRN,
    TBSRN_CONFIGS,
    RectifiedSR,
    create_model,
    idle_parameter_names,
    unused_tensor_names,
)
from ocrsr_lib.models.cdistnet import (
    CDISTNET_CONFIGS,
    CDistNet,
    encode_targets,
    to_cdistnet_input,
)
from ocrsr_lib.quant.apply import quantize_model, weight_error
from ocrsr_lib.quant.layers import (
    LAYER_GROUPS,
    PAPER_GROUPS,
    group_of,
    groups_in,
    quantization_plan,
)
from ocrsr_lib.quant.packing import load_packed, pack_bits, save_packed, unpack_bits
from ocrsr_lib.quant.size import theoretical_size


def demo_models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {
        "stn-edsr": RectifiedSR(EDSR(EDSR_CONFIGS["demo"])),
        "tbsrn": TBSRN(TBSRN_CONFIGS["demo"]),
        "cdistnet": CDistNet(CDISTNET_CONFIGS["demo"]),
    }


def test_every_trainable_weight_matrix_has_exactly_one_group():
    unused = "visual_branch.trans_encoder.pos_embeding"  # the official never-used parameter
    for model in demo_models().values():
        for name, parameter in model.named_parameters():
            if parameter.dim() > 1 and parameter.requires_grad and name != unused:
                matches = [
                    g for g, ps in LAYER_GROUPS.items() if any(re.match(p, name) for p in ps)
                ]
                assert len(matches) == 1, (name, matches)
    assert group_of("sr.body.3.body.0.weight") == "edsr-body"
    assert group_of("mdcdp.layers2.1.multihead_attn.conv1.weight") == "decoder-attention"
    assert group_of("mdcdp.layers_pos.0.multihead_attn.out_proj.weight") == "decoder-self-attention"
    assert group_of("sr.body.3.body.0.bias") is None


def test_paper_plans_select_the_papers_layer_types_and_keep_edges_at_8_bits():
    models = demo_models()
    for kind, model in models.items():
        plan = quantization_plan(model, PAPER_GROUPS[kind], 4)
        assert plan and all(group_of(name) in PAPER_GROUPS[kind] for name in plan)
        assert set(plan.values()) <= {4, 8}
    sr_plan = quantization_plan(models["stn-edsr"], PAPER_GROUPS["stn-edsr"], 4)
    first = next(name for name, _ in models["stn-edsr"].named_parameters() if group_of(name))
    assert sr_plan[first] == 8 and "sr.tail.0.0.weight" not in sr_plan  # the tail is not chosen
    ocr_plan = quantization_plan(models["cdistnet"], ["classifier", "fusion"], 3, edges="float")
    assert list(ocr_plan) == ["mdcdp.dynamic_shared_fusion.w_att.weight"]  # last layer float
    same = quantization_plan(models["cdistnet"], ["classifier"], 3, edges="same")
    assert same == {"tgt_word_prj.weight": 3}


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((["edsr-body", "lstm"], 4), r"unknown layer groups \['lstm'\]"),
        ((["edsr-body"], 1), "bits must be an integer from 2 to 8"),
        ((["edsr-body"], 4, "half"), "unknown edge policy 'half'"),
    ],
)
def test_bad_plans_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        quantization_plan(demo_models()["stn-edsr"], *arguments)


def test_size_counts_quantized_parameters_at_their_width_and_the_rest_at_32_bits():
    model = nn.Sequential(nn.Linear(10, 4), nn.Linear(4, 2))  # 40 + 4 + 8 + 2 parameters
    size = theoretical_size(model, {"0.weight": 4})
    assert size.bits == 40 * 4 + (4 + 8 + 2) * 32 == 608
    assert size.megabits == pytest.approx(608e-6) and size.megabytes == pytest.approx(76e-6)
    with pytest.raises(KeyError, match="2.weight"):
        theoretical_size(model, {"2.weight": 4})


def test_the_papers_model_size_column_is_in_megabits():
    cdistnet = theoretical_size(CDistNet(CDISTNET_CONFIGS["paper"]))
    edsr = theoretical_size(RectifiedSR(EDSR(EDSR_CONFIGS["paper"])))
    tbsrn = theoretical_size(TBSRN(TBSRN_CONFIGS["paper"]))
    assert (edsr + cdistnet).megabits == pytest.approx(3457.40, abs=0.01)  # paper, Table 2
    assert (tbsrn + cdistnet).megabits == pytest.approx(2190.08, abs=0.02)


def conv_model(width: int = 8) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, 4, 3)
    ).eval()


def test_quantize_model_changes_a_copy_only_and_reports_its_error():
    model = conv_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantized = quantize_model(model, {"0.weight": 3, "3.weight": 8}, "minmax", "tensor")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert quantized.model[0].weight.unique().numel() <= 8
    assert not torch.equal(quantized.model[0].weight, model[0].weight)
    assert 0 < weight_error(model, quantized) < 0.1
    assert quantized.size().bits == 216 * 3 + 288 * 8 + (8 + 8 + 8 + 4) * 32
    allocated = quantize_model(model, {"0.weight": 3}, "minmax", bit_allocation=True)
    widths = allocated.weights["0.weight"].grid.stored_bits()
    expected = int((widths * 27).sum()) + (8 + 8 + 8 + 288 + 4) * 32
    assert allocated.size().bits == expected
    with pytest.raises(KeyError, match="9.weight"):
        quantize_model(model, {"9.weight": 4})


@pytest.mark.parametrize("bits", range(2, 9))
def test_bits_pack_and_unpack_exactly(bits):
    values = torch.randint(0, 2**bits, (1001,), dtype=torch.uint8)
    packed = pack_bits(values, bits)
    assert packed.numel() == -(-1001 * bits // 8)
    assert torch.equal(unpack_bits(packed, bits, 1001), values)


def test_packing_refuses_values_too_wide_and_streams_too_short():
    with pytest.raises(ValueError, match="a value of 4 does not fit in 2 bits"):
        pack_bits(torch.tensor([4], dtype=torch.uint8), 2)
    with pytest.raises(ValueError, match="cannot hold"):
        unpack_bits(torch.zeros(1, dtype=torch.uint8), 3, 8)


@pytest.mark.parametrize(
    "method, granularity, bias_correction, bit_allocation",
    [
        ("aciq-mix", "channel", False, False),
        ("mse", "tensor", False, False),
        ("aciq-laplace", "channel", True, False),
        ("minmax", "channel", True, True),
    ],
)
def test_packed_checkpoint_reloads_to_identical_outputs_and_is_smaller(
    tmp_path, method, granularity, bias_correction, bit_allocation
):
    model = conv_model(width=64)  # large enough that per-channel metadata does not dominate
    plan = {"0.weight": 3, "3.weight": 2}
    quantized = quantize_model(model, plan, method, granularity, bias_correction, bit_allocation)
    path = save_packed(quantized, tmp_path / "packed.pt")
    loaded = load_packed(conv_model(width=64), path)
    images = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(images), quantized.model(images))
    torch.save(model.state_dict(), tmp_path / "float.pt")
    assert path.stat().st_size < (tmp_path / "float.pt").stat().st_size


def test_a_checkpoint_that_is_not_packed_is_refused(tmp_path):
    torch.save({"weights": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not a packed ocrsr checkpoint"):
        load_packed(conv_model(), tmp_path / "plain.pt")


def perturbed_outputs_differ(model: nn.Module, name: str, run) -> bool:
    """Whether adding noise to parameter `name` changes the model's output."""
    parameter = dict(model.named_parameters())[name]
    before = run(model)
    kept = parameter.detach().clone()
    with torch.no_grad():
        parameter.add_(torch.randn_like(parameter) * (kept.abs().mean() + 0.1))
        changed = not torch.allclose(run(model), before, rtol=0, atol=1e-7)
        parameter.copy_(kept)
    return changed


@pytest.mark.parametrize(
    "kind, options",
    [
        ("stn-edsr", {"stn_at_eval": True}),
        ("stn-edsr", {"stn_at_eval": False}),
        ("tbsrn", {"stn_at_eval": True}),
        ("tbsrn", {"stn_at_eval": False}),
        ("cdistnet", {}),
    ],
)
def test_a_plan_holds_every_used_weight_and_never_one_the_forward_ignores(kind, options):
    torch.manual_seed(0)
    model = create_model(kind, "demo", **options).eval()
    with torch.no_grad():  # the STN's last layer starts at zero: make every path live
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    if kind == "cdistnet":
        images, targets = to_cdistnet_input(torch.rand(2, 3, 32, 128)), encode_targets(["ab", "c"])
        run = lambda network: network(images, targets)  # noqa: E731
    else:
        lr = torch.rand(2, 3, 16, 64)
        run = lambda network: network(lr)  # noqa: E731
    idle = idle_parameter_names(kind, model)
    plan = quantization_plan(model, groups_in(model), 4, idle=idle)
    with torch.no_grad():
        assert plan and all(perturbed_outputs_differ(model, name, run) for name in plan)
        assert not any(perturbed_outputs_differ(model, name, run) for name in idle)
    grouped = {name for name, _ in model.named_parameters() if group_of(name)}
    assert grouped - idle == set(plan)  # every grouped weight that runs is planned
    if kind != "cdistnet" and not options["stn_at_eval"]:
        assert idle and all(name.startswith("stn.") for name in idle)
    elif kind == "cdistnet":
        assert idle == set(unused_tensor_names("cdistnet", model))
    else:
        assert not idle


def test_idle_parameters_are_refused_in_a_plan_and_counted_apart_in_sizes():
    model = create_model("stn-edsr", "demo").eval()  # STN off at evaluation: its weights idle
    idle = idle_parameter_names("stn-edsr", model)
    stn_weight = "stn.stn_head.stn_fc2.weight"
    with pytest.raises(ValueError, match="never read.*stn_fc2"):
        quantize_model(model, {stn_weight: 4}, idle=idle)
    quantized = quantize_model(model, {"sr.head.0.weight": 4}, idle=idle)
    idle_bits = sum(p.numel() * 32 for n, p in model.named_parameters() if n.startswith("stn."))
    assert quantized.idle_size().bits == idle_bits
    assert quantized.running_size().bits == quantized.size().bits - idle_bits
