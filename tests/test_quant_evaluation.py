"""Quantized pipelines measured like Table 2, on tiny trained models."""

import pytest

from ocrsr_lib.quant.evaluation import (
    Pipeline,
    QuantSetting,
    evaluate_setting,
    evaluation_path,
    float_size,
    quantized_pipeline,
)

TINY = Pipeline(sr="stn-edsr", ocr="finetune-stn-edsr")


def test_settings_quantize_only_their_target(tiny_cdistnet):
    session = tiny_cdistnet
    none_sr, none_ocr = quantized_pipeline(session, QuantSetting("none"), TINY)
    assert none_sr.weights == {} and none_ocr.weights == {}
    sr, ocr = quantized_pipeline(session, QuantSetting("sr", 4), TINY)
    assert sr.weights and ocr.weights == {}
    sr, ocr = quantized_pipeline(session, QuantSetting("sr+ocr", 2, "minmax"), TINY)
    assert sr.weights and set(ocr.plan.values()) == {2}  # its edges are not chosen layers
    groups = QuantSetting("ocr", 3, ocr_groups=("fusion",))
    assert list(quantized_pipeline(session, groups, TINY)[1].plan) == [
        "mdcdp.dynamic_shared_fusion.w_att.weight"
    ]


def test_evaluation_reports_table_2_columns_and_is_cached(tiny_cdistnet):
    session = tiny_cdistnet
    full = evaluate_setting(session, QuantSetting("none"), TINY)
    assert set(full["accuracy"]) == {"easy", "medium", "hard", "average"}
    assert full["megabits"] == pytest.approx(float_size(session, TINY).megabits)
    assert full["weight_error"] == {"sr": 0.0, "ocr": 0.0}
    low = evaluate_setting(session, QuantSetting("sr+ocr", 2, "minmax"), TINY, words=2)
    assert low["megabits"] < full["megabits"] and low["megabytes"] == low["megabits"] / 8
    assert 0 < low["weight_error"]["sr"] and 0 < low["weight_error"]["ocr"]
    path = evaluation_path(session, QuantSetting("sr+ocr", 2, "minmax"), TINY, 1, 2)
    assert path.is_file()
    assert evaluate_setting(session, QuantSetting("sr+ocr", 2, "minmax"), TINY, words=2) == low


def test_an_unknown_target_is_refused():
    with pytest.raises(ValueError, match="unknown target 'both'"):
        QuantSetting("both")
