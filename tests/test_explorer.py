"""The quantization explorer: it builds, evaluates what the controls say, and redraws."""

import matplotlib

from ocrsr_lib import explorer
from ocrsr_lib.pipelines import Pipeline, QuantSetting

matplotlib.use("Agg")
TINY = Pipeline(sr="stn-edsr", ocr="finetune-stn-edsr")


def test_changing_a_control_evaluates_that_setting_and_redraws(tiny_cdistnet, monkeypatch):
    calls = []
    result = {
        "psnr": 20.0,
        "accuracy": {"easy": 0.5, "medium": 0.5, "hard": 0.25, "average": 0.4},
        "megabits": 10.0,
        "megabytes": 1.25,
    }

    def evaluate(session, setting, pipeline, words):
        calls.append(setting)
        return result

    monkeypatch.setattr(explorer, "evaluate_setting", evaluate)
    widget = explorer.quantization_explorer(tiny_cdistnet, TINY, indices=(0, 1))
    assert calls[0] == QuantSetting("none") and calls[1].target == "sr+ocr"
    widget.controls["bits"].value = 3
    widget.controls["method"].value = "minmax"
    assert calls[-1].bits == 3 and calls[-1].method == "minmax"
    widget.controls["ocr_groups"].value = ("fusion",)
    assert calls[-1].ocr_groups == ("fusion",)
    assert "stn-fc" in widget.controls["sr_groups"].options
    text = explorer.summary(result, result)
    assert "PSNR 20.00 dB (+0.00)" in text and "40.0%" in text and "1.25 MB" in text
