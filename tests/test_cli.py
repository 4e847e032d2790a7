"""The `ocrsr` command line."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_image

from ocrsr_lib.cli import main
from ocrsr_lib.data import write_textzoom_lmdb
from ocrsr_lib.models import OFFICIAL_REFERENCES


def test_data_command_lists_a_real_textzoom_root(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for split in ("train1", "train2", "test/easy", "test/medium", "test/hard"):
        write_textzoom_lmdb(
            tmp_path / "tz" / split,
            [(random_image(rng, (64, 16)), random_image(rng, (128, 32)), "w")],
        )
    assert main(["data", "--profile", "paper", "--textzoom", str(tmp_path / "tz")]) == 0
    printed = capsys.readouterr().out
    assert "train        2 pairs" in printed and "hard         1 pairs" in printed


def test_data_command_reports_a_missing_root_clearly(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path / "cache"))
    assert main(["data", "--profile", "paper", "--textzoom", str(tmp_path / "nowhere")]) == 2
    assert "missing splits" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_sr_refuses_cuda_without_cuda(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path / "cache"))
    assert main(["train-sr", "stn-edsr", "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_train_sr_trains_a_recipe_and_reports_psnr(tiny_recipes, capsys):
    assert main(["train-sr", "edsr", "--textzoom", str(tiny_recipes), "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "4 steps" in printed and "bicubic" in printed and "edsr" in printed


def test_train_cdistnet_trains_a_recipe_and_reports_its_accuracy(tiny_recipes, monkeypatch, capsys):
    from ocrsr_lib.runs import cdistnet
    from ocrsr_lib.train import TrainConfig

    tiny = TrainConfig(steps=2, batch_size=4, learning_rate=1e-3)
    demo = {"pretrain": cdistnet.CDistNetRecipe("demo", tiny, augment=False)}
    monkeypatch.setitem(cdistnet.CDISTNET_RECIPES, "demo", demo)
    arguments = ["train-cdistnet", "pretrain", "--textzoom", str(tiny_recipes), "--device", "cpu"]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert "2 steps" in printed and "hr -> pretrain" in printed and "average" in printed


def test_paper_pretraining_without_scene_text_names_the_variable(tiny_recipes, monkeypatch, capsys):
    monkeypatch.delenv("OCRSR_SCENE_TEXT", raising=False)
    arguments = ["train-cdistnet", "pretrain", "--profile", "paper", "--device", "cpu"]
    assert main([*arguments, "--textzoom", str(tiny_recipes)]) == 2
    assert "OCRSR_SCENE_TEXT" in capsys.readouterr().err


def tiny_pipeline(monkeypatch):
    from ocrsr_lib import cli
    from ocrsr_lib.pipelines import Pipeline

    monkeypatch.setitem(cli.PIPELINES, "edsr", Pipeline("stn-edsr", "finetune-stn-edsr"))


def test_quantize_writes_packed_checkpoints_smaller_than_float(tiny_cdistnet, monkeypatch, capsys):
    tiny_pipeline(monkeypatch)
    out = tiny_cdistnet.cache.root / "packed"
    root = str(tiny_cdistnet.textzoom)
    arguments = ["quantize", "--textzoom", root, "--device", "cpu", "--bits", "4"]
    assert main([*arguments, "--out", str(out)]) == 0
    files = sorted(path.name for path in out.iterdir())
    assert files == ["edsr-sr+ocr-4bit-aciq-mix-ocr.pt", "edsr-sr+ocr-4bit-aciq-mix-sr.pt"]
    assert "Mbit" in capsys.readouterr().out
    assert main([*arguments, "--target", "none"]) == 2
    assert "--target" in capsys.readouterr().err


def test_evaluate_prints_psnr_accuracy_and_size(tiny_cdistnet, monkeypatch, capsys):
    tiny_pipeline(monkeypatch)
    root = str(tiny_cdistnet.textzoom)
    arguments = ["evaluate", "--textzoom", root, "--device", "cpu", "--target", "sr", "--bits", "3"]
    assert main([*arguments, "--beam", "1"]) == 0
    printed = capsys.readouterr().out
    assert "PSNR" in printed and "average" in printed and "Mbit" in printed


def test_check_precision_compares_bf16_with_float32(tiny_cdistnet, monkeypatch, capsys):
    tiny_pipeline(monkeypatch)
    root = str(tiny_cdistnet.textzoom)
    arguments = ["check-precision", "--textzoom", root, "--device", "cpu", "--batch", "2"]
    assert main(arguments) == 0
    printed = capsys.readouterr().out
    assert "images compared: 4" in printed and "relative RMS" in printed


def test_bf16_training_on_a_cpu_is_refused(tiny_recipes, capsys):
    arguments = ["train-sr", "edsr", "--textzoom", str(tiny_recipes), "--device", "cpu", "--bf16"]
    assert main(arguments) == 2
    assert "bf16 autocast is for CUDA" in capsys.readouterr().err


def test_batch_size_override_reaches_the_recipe(tiny_recipes, capsys):
    arguments = ["train-sr", "edsr", "--textzoom", str(tiny_recipes), "--device", "cpu"]
    assert main([*arguments, "--batch-size", "2", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "batch_size=2" in printed and "num_workers=1" in printed and "4 steps" in printed


def test_out_of_memory_names_the_batch_size(monkeypatch, capsys):
    from ocrsr_lib import cli

    def exhausted(args, session):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(cli, "report_command", exhausted)
    assert main(["report", "--batch-size", "512"]) == 3
    error = capsys.readouterr().err
    assert "out of GPU memory with batch size 512" in error and "--batch-size" in error


OFFICIAL = OFFICIAL_REFERENCES


def test_an_official_edsr_replaces_the_natural_image_pretraining(tiny_recipes, monkeypatch, capsys):
    """train-sr stn-edsr starts from the official EDSR file instead of training edsr-natural."""
    from ocrsr_lib.models import EDSR_CONFIGS, EDSRConfig
    from ocrsr_lib.models.rectified import STN_EDSR_CONFIGS, STNEDSRConfig
    from ocrsr_lib.models.stn import STN_CONFIGS
    from ocrsr_lib.runs import sr
    from ocrsr_lib.train import TrainConfig

    official_size = EDSRConfig(residual_blocks=2, features=16, residual_scale=1.0, rgb_range=255)
    monkeypatch.setitem(EDSR_CONFIGS, "official-small", official_size)
    stn_edsr_size = STNEDSRConfig(official_size, STN_CONFIGS["demo"])
    monkeypatch.setitem(STN_EDSR_CONFIGS, "official-small", stn_edsr_size)
    tiny = TrainConfig(steps=2, batch_size=4, learning_rate=1e-3)
    size = "official-small"
    stn_edsr = sr.SRRecipe("stn-edsr", size, "mse", tiny, start_from="edsr-natural")
    monkeypatch.setitem(sr.SR_RECIPES["demo"], "stn-edsr", stn_edsr)
    arguments = ["train-sr", "stn-edsr", "--textzoom", str(tiny_recipes), "--device", "cpu"]
    edsr_file = OFFICIAL / "edsr_x2_small.pt"
    assert main([*arguments, "--official", f"edsr-natural={edsr_file}"]) == 0
    printed = capsys.readouterr().out
    assert f"edsr-natural from {edsr_file}" in printed and "2 steps" in printed
    cache = Path(os.environ["OCRSR_CACHE"]) / "demo" / "checkpoints"
    assert not list(cache.glob("sr-edsr-natural-*"))  # nothing was trained for it


def test_official_arguments_are_checked_before_anything_runs(tiny_recipes, monkeypatch, capsys):
    arguments = ["train-sr", "stn-edsr", "--textzoom", str(tiny_recipes), "--device", "cpu"]
    assert main([*arguments, "--official", "edsr-natural"]) == 2
    assert "RECIPE=FILE" in capsys.readouterr().err
    monkeypatch.setenv("OCRSR_OFFICIAL", "pretrain=/nowhere/cdistnet.pth")
    assert main(arguments) == 2
    assert "'pretrain' not found: /nowhere/cdistnet.pth" in capsys.readouterr().err
    monkeypatch.delenv("OCRSR_OFFICIAL")
    assert main([*arguments, "--official", "stn-edsr=x.pt"]) == 2
    assert "no official checkpoint replaces ['stn-edsr']" in capsys.readouterr().err
    assert main([*arguments, "--official", "edsr-natural=/nowhere/edsr.pt"]) == 2
    assert "not found: /nowhere/edsr.pt" in capsys.readouterr().err


def test_a_mismatched_official_file_names_the_keys(tiny_recipes, capsys):
    """The demo STN+EDSR is wider than the small official EDSR: refused with the shapes."""
    arguments = ["train-sr", "stn-edsr", "--textzoom", str(tiny_recipes), "--device", "cpu"]
    edsr_file = OFFICIAL / "edsr_x2_small.pt"
    assert main([*arguments, "--official", f"edsr-natural={edsr_file}"]) == 2
    assert "head.0.weight" in capsys.readouterr().err


def test_sweep_prints_every_setting(tiny_cdistnet, monkeypatch, capsys):
    tiny_pipeline(monkeypatch)
    root = str(tiny_cdistnet.textzoom)
    arguments = ["sweep", "--textzoom", root, "--device", "cpu", "--bits", "6", "3"]
    assert main([*arguments, "--words", "2"]) == 0
    printed = capsys.readouterr().out.splitlines()
    rows = printed[next(i for i, row in enumerate(printed) if row.startswith("target")) :]
    assert rows[0].split()[:4] == ["target", "method", "bits", "PSNR"]
    settings = [tuple(row.split()[:3]) for row in rows[1:]]
    assert settings == [
        (target, method, bits)
        for target in ("sr", "ocr", "sr+ocr")
        for method in ("aciq-mix", "minmax")
        for bits in ("6", "3")
    ]
