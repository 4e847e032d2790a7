"""Pricing the paper-scale stages: data sizes, counted steps, recorded rates matched to work."""

import pytest
import torch
from torch import nn

from ocrsr_lib import paper_scale
from ocrsr_lib.config import setup
from ocrsr_lib.paper_scale import (
    SCENE_TEXT_WORDS,
    STAGES,
    counted_step,
    stage_config,
    training_pairs,
    utilisation,
)


@pytest.fixture
def paper(tmp_path, monkeypatch):
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path))
    return setup("paper", device="cpu", verbose=False)


def test_each_stage_trains_on_its_own_data(paper):
    pairs = {stage.recipe: training_pairs(paper, stage) for stage in STAGES}
    assert pairs["edsr-natural"] == 17367  # the natural set is sized like TextZoom's train
    assert pairs["stn-edsr-text-focus"] == 17367 - 200  # less the held-out validation words
    assert pairs["pretrain"] == SCENE_TEXT_WORDS
    assert stage_config(paper, STAGES[2]).epochs == 500  # TBSRN's public schedule
    assert stage_config(paper, STAGES[4]).batch_size == 128


def test_counted_step_gives_memory_and_flops_of_one_training_step():
    layer = nn.Linear(100, 50, bias=False)
    inputs = torch.randn(4, 100)
    memory, flops = counted_step(layer, lambda: layer(inputs).sum(), 4)
    assert flops == 2 * (2 * 100 * 50)  # forward and the weight gradient (inputs need none)
    assert memory.activations == 4 * 100 * 4 and memory.optimizer == 2 * 100 * 50 * 4
    assert layer.weight.grad is not None


def test_utilisation_matches_recorded_rows_to_counted_work(monkeypatch):
    monkeypatch.setattr(paper_scale, "reading_flops_per_image", lambda beam: 1e9 * beam)
    costs = [{"recipe": "stn-edsr-text-focus", "flops_per_image": 300e9}]
    rates = {
        "SR training (text-focus, paper guide), STN+EDSR paper, batch 32": 400.0,
        "CDistNet reading, paper, beam 10": 50.0,
        "SR training (MSE), STN+EDSR demo, batch 16": 1000.0,  # demo size: not counted
    }
    rows = utilisation(costs, rates, peak=1e15)
    assert [row["measurement"] for row in rows] == list(rates)[:2]
    assert rows[0]["flops_per_second"] == pytest.approx(1.2e14)
    assert rows[0]["share_of_peak"] == pytest.approx(0.12)
    assert rows[1]["flops_per_image"] == 1e10 and rows[1]["counted as"] == "reading"
