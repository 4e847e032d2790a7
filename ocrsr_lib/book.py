"""The book's one import: every name the chapters use, from the modules that own them.

Chapters write `from ocrsr_lib.book import ...`, as d2l's chapters use `d2l.*`; the library's
docstrings say which chapter explains a name. Nothing is defined here."""

from ocrsr_lib.claims import claims_markdown
from ocrsr_lib.config import setup
from ocrsr_lib.costs import costs_markdown
from ocrsr_lib.data import (
    TEST_DIFFICULTIES,
    decoded_in_memory,
    normalize_label,
    scoring_splits,
    session_splits,
    session_textzoom_root,
    split_labels,
)
from ocrsr_lib.data.natural import NaturalImagePairs
from ocrsr_lib.data.synth import DEGRADATIONS, synthesize_pair
from ocrsr_lib.data.synth_scene_text import scene_text_labels, scene_text_word
from ocrsr_lib.evaluation import (
    accuracy_of,
    accuracy_table,
    images_for_reading,
    read_split,
    sr_quality_and_accuracy,
)
from ocrsr_lib.explorer import examples_figure, quantization_explorer
from ocrsr_lib.flops import bf16_peak
from ocrsr_lib.losses import TextFocusLoss, TextFocusWeights, most_confused
from ocrsr_lib.metrics import evaluate_sr, psnr
from ocrsr_lib.models import (
    OFFICIAL_REFERENCES,
    STN_CONFIGS,
    Bicubic,
    RectifiedSR,
    SpatialTransformer,
    create_model,
    idle_parameter_names,
    load_official,
    model_sizes,
    parameter_count,
    set_stn_at_eval,
)
from ocrsr_lib.models.cdistnet import beam_search, encode_targets, to_cdistnet_input
from ocrsr_lib.models.guide import ALPHABET, attention_maps, encode_labels
from ocrsr_lib.models.tbsrn import positional_encoding_2d
from ocrsr_lib.paper import PAPER_TABLE_1, PAPER_TABLE_2, TEXTZOOM_BICUBIC_PSNR, as_fractions
from ocrsr_lib.paper_scale import SCENE_TEXT_WORDS, stage_costs, utilisation
from ocrsr_lib.pipelines import (
    BEAM_SIZE,
    EDSR_PIPELINE,
    BeamReader,
    QuantSetting,
    cdistnet_readings,
    evaluate_setting,
    float_size,
    pipeline_accuracy,
    pipeline_models,
    quantized_pipeline,
    table_1,
)
from ocrsr_lib.precision import compare_precisions, hard_batches
from ocrsr_lib.quant.aciq import aciq_alpha, expected_error, fitted_scale
from ocrsr_lib.quant.layers import group_of
from ocrsr_lib.quant.packing import load_packed, save_packed
from ocrsr_lib.quant.quantizers import QuantSpec, fake_quantize, grid_for, quantize_weight
from ocrsr_lib.quant.size import theoretical_size
from ocrsr_lib.records import RESULTS, recorded_machine, recorded_rates
from ocrsr_lib.results import (
    CHAPTER_SWEEP_WORDS,
    AcceptanceRule,
    chosen_bit_widths,
    edsr_only_hard_words,
    figure_2,
    paper_claims,
    quantization_sweep,
    smallest_acceptable_bits,
    table_1_markdown,
    table_2,
    table_2_markdown,
)
from ocrsr_lib.runs import (
    checkpoint_path,
    guide_confusions,
    guide_weight_table,
    recipe_for,
    recognizer_training_words,
    text_train_and_validation,
    trained,
)
from ocrsr_lib.runs.sr import budget_name, pretraining_data
from ocrsr_lib.tables import format_accuracy, format_report, markdown_table, sweep_table
from ocrsr_lib.trend import (
    TREND_READER,
    budget_trend,
    budgets,
    recognizer_curves,
    recognizer_curves_figure,
    trend_claims,
    trend_figure,
    trend_markdown,
)
from ocrsr_lib.viz import image_grid, moving_average, use_book_style

__all__ = [
    "pretraining_data",
    "TREND_READER",
    "budget_name",
    "budget_trend",
    "budgets",
    "recognizer_curves",
    "recognizer_curves_figure",
    "trend_claims",
    "trend_figure",
    "trend_markdown",
    "claims_markdown",
    "ALPHABET",
    "BEAM_SIZE",
    "DEGRADATIONS",
    "EDSR_PIPELINE",
    "OFFICIAL_REFERENCES",
    "PAPER_TABLE_1",
    "PAPER_TABLE_2",
    "TEXTZOOM_BICUBIC_PSNR",
    "RESULTS",
    "SCENE_TEXT_WORDS",
    "TEST_DIFFICULTIES",
    "AcceptanceRule",
    "BeamReader",
    "Bicubic",
    "NaturalImagePairs",
    "QuantSetting",
    "QuantSpec",
    "RectifiedSR",
    "SpatialTransformer",
    "STN_CONFIGS",
    "TextFocusLoss",
    "TextFocusWeights",
    "accuracy_of",
    "accuracy_table",
    "sr_quality_and_accuracy",
    "aciq_alpha",
    "as_fractions",
    "attention_maps",
    "beam_search",
    "bf16_peak",
    "cdistnet_readings",
    "checkpoint_path",
    "compare_precisions",
    "costs_markdown",
    "chosen_bit_widths",
    "paper_claims",
    "create_model",
    "decoded_in_memory",
    "edsr_only_hard_words",
    "encode_labels",
    "encode_targets",
    "evaluate_setting",
    "evaluate_sr",
    "examples_figure",
    "expected_error",
    "fake_quantize",
    "figure_2",
    "fitted_scale",
    "float_size",
    "format_accuracy",
    "format_report",
    "grid_for",
    "group_of",
    "guide_confusions",
    "guide_weight_table",
    "hard_batches",
    "image_grid",
    "images_for_reading",
    "load_official",
    "load_packed",
    "markdown_table",
    "model_sizes",
    "most_confused",
    "moving_average",
    "normalize_label",
    "parameter_count",
    "pipeline_accuracy",
    "pipeline_models",
    "positional_encoding_2d",
    "psnr",
    "quantization_explorer",
    "quantization_sweep",
    "CHAPTER_SWEEP_WORDS",
    "sweep_table",
    "quantize_weight",
    "quantized_pipeline",
    "read_split",
    "recipe_for",
    "recorded_machine",
    "recorded_rates",
    "save_packed",
    "scoring_splits",
    "session_splits",
    "session_textzoom_root",
    "set_stn_at_eval",
    "idle_parameter_names",
    "setup",
    "smallest_acceptable_bits",
    "split_labels",
    "stage_costs",
    "synthesize_pair",
    "scene_text_labels",
    "scene_text_word",
    "table_1",
    "table_1_markdown",
    "table_2",
    "table_2_markdown",
    "recognizer_training_words",
    "text_train_and_validation",
    "theoretical_size",
    "to_cdistnet_input",
    "trained",
    "use_book_style",
    "utilisation",
]
