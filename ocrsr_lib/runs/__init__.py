"""Trained runs: every model the book and the command line train, by recipe name.

`trained(session, name)` returns a `Run` for any recipe (SR models, the guide and judge,
CDistNet pretraining and fine-tunes), from the cache, the weights shipped with the package
(`runs.shipped`) or training; the family modules hold only their recipe tables and
hooks (`ocrsr_lib.runs.core.Family`)."""

from ocrsr_lib.runs.cdistnet import CDISTNET_RECIPES, CDistNetRecipe, image_source
from ocrsr_lib.runs.core import (
    FAMILIES,
    UNHASHED_TRAIN_FIELDS,
    Run,
    check_official_runs,
    checkpoint_path,
    dependencies,
    family_of,
    load_trained_weights,
    needed_runs,
    recipe_for,
    run_key,
    shipped_file,
    trained,
    weights_line,
)
from ocrsr_lib.runs.data import hold_out, recognizer_training_words, text_train_and_validation
from ocrsr_lib.runs.guide import (
    RECOGNIZER_RECIPES,
    RecognizerRecipe,
    confusion_weights,
    guide_confusions,
    guide_weight_table,
)
from ocrsr_lib.runs.joint import JOINT_RECIPES, JointRecipe
from ocrsr_lib.runs.sr import SR_RECIPES, SRRecipe, loss_for

__all__ = [
    "JOINT_RECIPES",
    "JointRecipe",
    "CDISTNET_RECIPES",
    "FAMILIES",
    "RECOGNIZER_RECIPES",
    "SR_RECIPES",
    "UNHASHED_TRAIN_FIELDS",
    "CDistNetRecipe",
    "RecognizerRecipe",
    "Run",
    "SRRecipe",
    "check_official_runs",
    "checkpoint_path",
    "dependencies",
    "needed_runs",
    "confusion_weights",
    "family_of",
    "guide_confusions",
    "guide_weight_table",
    "hold_out",
    "image_source",
    "load_trained_weights",
    "loss_for",
    "recipe_for",
    "recognizer_training_words",
    "run_key",
    "shipped_file",
    "text_train_and_validation",
    "trained",
    "weights_line",
]
