"""SR -> OCR pipelines on tiny trained models: cached readings, Table 1, and quantized pipelines
measured like Table 2."""

from dataclasses import replace

import pytest
import torch

from ocrsr_lib import pipelines
from ocrsr_lib.data import normalize_label, scoring_splits, session_splits, split_labels
from ocrsr_lib.evaluation import accuracy_of, read_split
from ocrsr_lib.metrics import evaluate_sr
from ocrsr_lib.pipelines import (
    Pipeline,
    QuantSetting,
    evaluate_setting,
    float_size,
    quantized_pipeline,
)
from ocrsr_lib.runs import CDISTNET_RECIPES, SR_RECIPES, trained

TINY = Pipeline(sr="stn-edsr", ocr="finetune-stn-edsr")


def evaluated_file(session, *arguments):
    """Where `evaluate_setting` caches the evaluation of these arguments."""
    return session.cache.file(*pipelines.evaluation_artifact(session, *arguments))


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
    path = evaluated_file(session, QuantSetting("sr+ocr", 2, "minmax"), TINY, 1, 2)
    assert path.is_file()
    assert evaluate_setting(session, QuantSetting("sr+ocr", 2, "minmax"), TINY, words=2) == low


def test_an_evaluation_scores_psnr_and_readings_as_the_separate_measurements_do(tiny_cdistnet):
    """The float pipeline's numbers are those of evaluate_sr and read_split; its SR images and
    readings are the cached ones that Table 1 and Figure 2 use, and a setting that quantizes
    only the recognizer reads those same SR images."""
    session = tiny_cdistnet
    sr_model, ocr_model = trained(session, TINY.sr).model, trained(session, TINY.ocr).model
    test = scoring_splits(session)
    reader = pipelines.BeamReader(ocr_model, 1)
    scored = evaluate_setting(session, QuantSetting("none"), TINY)
    report = evaluate_sr(sr_model, test)
    assert scored["psnr"] == pytest.approx(report["average"]["psnr"], abs=1e-4)
    images = pipelines.sr_images(session, TINY.sr)
    readings = pipelines.cdistnet_readings(session, TINY.ocr, TINY.sr, 1)
    for name, split in test.items():
        assert images[name].shape == (len(split), 3, 32, 128)
        words, labels = read_split(reader, split, sr_model)
        assert readings[name] == words
        assert scored["accuracy"][name] == accuracy_of(words, labels)
    ocr_only = QuantSetting("ocr", 4)
    setting_images = pipelines.setting_images(session, ocr_only, TINY, sr_model, test)
    assert all(torch.equal(setting_images[name], images[name]) for name in test)
    sr_only = QuantSetting("sr", 2, "minmax")
    quantized_sr, _ = quantized_pipeline(session, sr_only, TINY)
    changed = pipelines.setting_images(session, sr_only, TINY, quantized_sr.model, test)
    assert not torch.equal(changed["easy"], images["easy"])
    with pytest.raises(ValueError, match="cannot upscale an empty split"):
        pipelines.upscale_split(sr_model, [], "cpu")


def test_an_unknown_target_is_refused():
    with pytest.raises(ValueError, match="unknown target 'both'"):
        QuantSetting("both")


def test_readings_are_cached_per_model_images_and_beam_and_scored_per_split(tiny_cdistnet):
    session = tiny_cdistnet
    readings = pipelines.cdistnet_readings(session, "finetune-stn-edsr", "stn-edsr", 2)
    splits = session_splits(session)
    assert {split: len(words) for split, words in readings.items()} == {
        name: len(splits[name]) for name in ("easy", "medium", "hard")
    }
    path = pipelines.readings_file(session, "finetune-stn-edsr", "stn-edsr", 2)
    assert path.is_file() and "stn-edsr" in path.name
    torch.save({"easy": ["x"]}, path)  # the cache is read, not recomputed
    assert pipelines.cdistnet_readings(session, "finetune-stn-edsr", "stn-edsr", 2) == {
        "easy": ["x"]
    }
    assert pipelines.readings_file(session, "finetune-hr", "hr", 2) != path
    assert pipelines.readings_file(session, "finetune-stn-edsr", "stn-edsr", 1) != path


def test_pipeline_accuracy_scores_the_cached_readings(tiny_cdistnet, monkeypatch):
    session = tiny_cdistnet
    splits = session_splits(session)
    labels = {name: split_labels(splits[name]) for name in ("easy", "medium", "hard")}
    readings = {name: [normalize_label(label) for label in words] for name, words in labels.items()}
    readings["hard"][0] = "wrong"
    monkeypatch.setattr(pipelines, "cdistnet_readings", lambda *args: readings)
    row = pipelines.pipeline_accuracy(session, "hr", "finetune-hr")
    assert row["easy"] == row["medium"] == 1.0
    assert row["hard"] == 1 - 1 / len(labels["hard"])
    assert row["average"] == pytest.approx(1 - 1 / sum(map(len, labels.values())))


def test_table_1_reads_each_pipeline_once_with_its_own_cdistnet(tiny_cdistnet, monkeypatch):
    calls = []

    def accuracy(session, images, name):
        calls.append((images, name))
        return {"average": len(calls) / 10}

    monkeypatch.setattr(pipelines, "pipeline_accuracy", accuracy)
    table = pipelines.table_1(tiny_cdistnet)
    assert list(table) == list(pipelines.TABLE_1_PIPELINES)
    assert calls == list(pipelines.TABLE_1_PIPELINES.values())
    assert table["bicubic + CDistNet (fine-tuned)"] == {"average": 0.5}


def test_table_1_pipelines_name_existing_recipes():
    for images, name in pipelines.TABLE_1_PIPELINES.values():
        assert name in CDISTNET_RECIPES["demo"]
        assert images in ("bicubic", "hr") or images in SR_RECIPES["demo"]
    for pipeline in pipelines.PIPELINES.values():
        assert pipeline.sr in SR_RECIPES["demo"] and pipeline.ocr in CDISTNET_RECIPES["demo"]


def test_a_profile_with_fewer_test_words_scores_only_those(tiny_cdistnet):
    session = replace(tiny_cdistnet, profile=replace(tiny_cdistnet.profile, test_words=2))
    test = scoring_splits(session)
    assert [len(split) for split in test.values()] == [2, 2, 2]
    assert split_labels(test["easy"]) == split_labels(session_splits(session)["easy"])[:2]
    readings = pipelines.cdistnet_readings(session, "finetune-hr", "hr", 1)
    assert [len(words) for words in readings.values()] == [2, 2, 2]
    full = pipelines.readings_file(tiny_cdistnet, "finetune-hr", "hr", 1)
    assert pipelines.readings_file(session, "finetune-hr", "hr", 1) != full


def test_a_validation_evaluation_reads_the_held_out_training_words_and_never_test(
    tiny_cdistnet, monkeypatch
):
    session = tiny_cdistnet

    def no_test(*args):
        raise AssertionError("a validation evaluation read the test splits")

    validation = pipelines.text_train_and_validation(session)[1]
    monkeypatch.setattr(pipelines, "scoring_splits", no_test)
    monkeypatch.setattr(pipelines, "cdistnet_readings", no_test)
    for setting in (QuantSetting("none"), QuantSetting("sr+ocr", 3)):
        result = evaluate_setting(session, setting, TINY, data="validation")
        assert set(result["accuracy"]) == {"validation", "average"}
        assert result["accuracy"]["validation"] == result["accuracy"]["average"]
    words = evaluate_setting(session, QuantSetting("ocr", 4), TINY, words=3, data="validation")
    assert 0 <= words["accuracy"]["average"] <= 1 and len(validation) > 3
    test_file = evaluated_file(session, QuantSetting("none"), TINY, 1, None)
    assert evaluated_file(session, QuantSetting("none"), TINY, 1, None, "validation") != test_file
    float_images = pipelines.sr_images(session, TINY.sr, "validation")["validation"]
    assert float_images.shape == (len(validation), 3, 32, 128)
    with pytest.raises(ValueError, match="unknown evaluation data 'train'"):
        pipelines.evaluation_splits(session, "train", None)


def test_sizes_count_idle_weights_apart_and_plans_never_hold_them(tiny_cdistnet):
    session = tiny_cdistnet
    result = evaluate_setting(session, QuantSetting("sr+ocr", 4), TINY, words=2)
    sr, ocr = quantized_pipeline(session, QuantSetting("sr+ocr", 4), TINY)
    idle = sum(dict(ocr.model.named_parameters())[name].numel() for name in ocr.idle)
    assert ocr.idle and not (ocr.idle & set(ocr.plan)) and not sr.idle  # the STN runs
    assert result["idle_parameters"] == idle
    assert result["running_megabits"] == pytest.approx(result["megabits"] - idle * 32 / 1e6)
    planned = sum(weight.values().numel() for part in (sr, ocr) for weight in part.weights.values())
    assert result["quantized_parameters"] == planned
