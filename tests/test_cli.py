"""The `ocrsr` command line."""

import numpy as np
from conftest import random_image

from ocrsr_lib.cli import main
from ocrsr_lib.data import write_textzoom_lmdb


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
