"""Profiles, cache folder, device and seeding: the one setup call every chapter starts with."""

from __future__ import annotations

import os
import platform
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ocrsr_lib.cache import Cache

PROFILE_ENV = "OCRSR_PROFILE"
CACHE_ENV = "OCRSR_CACHE"
DEVICE_ENV = "OCRSR_DEVICE"
TEXTZOOM_ENV = "OCRSR_TEXTZOOM"
SCENE_TEXT_ENV = "OCRSR_SCENE_TEXT"  # MJSynth/SynthText LMDB folders, separated by os.pathsep
DIV2K_ENV = "OCRSR_DIV2K"  # DIV2K folder the paper profile pretrains EDSR on
OFFICIAL_ENV = "OCRSR_OFFICIAL"  # official checkpoints: RECIPE=FILE, separated by commas
RETRAIN_ENV = "OCRSR_RETRAIN"  # 1: train every run instead of loading shipped weights


@dataclass(frozen=True)
class SyntheticDataConfig:
    """Size and seed of a synthetic TextZoom; TextZoom's own split names and layout."""

    train_pairs: int
    test_pairs: tuple[int, int, int]  # easy, medium, hard
    seed: int = 0
    # sharp word crops that the recognizers pretrain on when no MJSynth/SynthText is given
    # (`ocrsr_lib.data.synth_scene_text`); 0: none
    scene_text_words: int = 0


@dataclass(frozen=True)
class Profile:
    """A named set of sizes: `demo` runs on a laptop CPU, `paper` at the paper's scale."""

    name: str
    description: str
    synthetic: SyntheticDataConfig
    uses_real_textzoom: bool = False
    recipes: str = ""  # whose model sizes and training recipes to use; "" means this profile's
    budget: float = 1.0  # fraction of those recipes' training steps actually run
    test_words: int | None = None  # words per test split that pipelines are scored on (None: all)
    # precision of every trained run's weights as used and shipped: "float16" rounds them once
    # training ends, so a model trained now equals the shipped file (`ocrsr_lib.runs.shipped`)
    weight_storage: str = "float32"

    @property
    def recipe_table(self) -> str:
        """The key of the recipe tables (SR, recognizer, CDistNet) this profile trains from."""
        return self.recipes or self.name


PROFILES = {
    "demo": Profile(
        name="demo",
        description="CPU, synthetic TextZoom-format data, small models",
        synthetic=SyntheticDataConfig(
            train_pairs=6000, test_pairs=(300, 300, 300), scene_text_words=100_000
        ),
        weight_storage="float16",
    ),
    # the tests' profile: the demo's data and model sizes at 1% of the training steps, so that
    # tests/test_smoke_retrain.py retrains every recipe family in minutes; its numbers mean nothing
    "smoke": Profile(
        name="smoke",
        description="demo data and models at 1% of the demo's training steps (for make test)",
        synthetic=SyntheticDataConfig(
            train_pairs=6000, test_pairs=(300, 300, 300), scene_text_words=2000
        ),
        recipes="demo",
        budget=0.01,
        test_words=50,
        weight_storage="float16",
    ),
    "paper": Profile(
        name="paper",
        description="paper model sizes; the real TextZoom when OCRSR_TEXTZOOM is set, "
        "else synthetic data of TextZoom's size",
        synthetic=SyntheticDataConfig(train_pairs=17367, test_pairs=(1619, 1411, 1343)),
        uses_real_textzoom=True,
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile called `name`, else the one named by OCRSR_PROFILE, else `demo`."""
    name = name or os.environ.get(PROFILE_ENV) or "demo"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]


def cache_dir() -> Path:
    """The one cache folder for datasets, checkpoints and result tables (OCRSR_CACHE overrides)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser().resolve() / "ocrsr"


def select_device(requested: str | None = None) -> torch.device:
    """CUDA when present, else CPU; an explicit request for CUDA without CUDA is an error."""
    requested = requested or os.environ.get(DEVICE_ENV) or "auto"
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} was requested but CUDA is not available here")
    return device


# recipes whose run an official checkpoint can replace, and the kind of converter that reads the
# file (`ocrsr_lib.models.load_official`): the general EDSR (EDSR-PyTorch files), TBSRN
# trained with its text-focus loss, TBSRN's guiding recognizer, the pretrained CDistNet
OFFICIAL_RUNS = {
    "edsr-natural": "edsr",
    "tbsrn-text-focus": "tbsrn",
    "guide": "tbsrn-recognizer",
    "pretrain": "cdistnet",
}


def parse_official(text: str) -> dict[str, str]:
    """ "RECIPE=FILE,RECIPE=FILE" (OCRSR_OFFICIAL, --official) as a dict; malformed is an error."""
    files = {}
    for assignment in filter(None, (part.strip() for part in text.split(","))):
        name, separator, path = assignment.partition("=")
        if not separator or not name or not path:
            raise ValueError(f"official checkpoints are given as RECIPE=FILE, got {assignment!r}")
        files[name] = path
    return files


def checked_official(official: dict[str, str | os.PathLike]) -> dict[str, Path]:
    """Official checkpoint files by the recipe they replace; unknown recipes and missing files
    are refused before anything runs."""
    unknown = sorted(set(official) - set(OFFICIAL_RUNS))
    if unknown:
        raise ValueError(f"no official checkpoint replaces {unknown}; only {list(OFFICIAL_RUNS)}")
    files = {name: Path(path).expanduser() for name, path in official.items()}
    for name, path in files.items():
        if not path.is_file():
            raise FileNotFoundError(f"official checkpoint for {name!r} not found: {path}")
    return files


OVERRIDABLE = ("batch_size", "bf16", "channels_last", "compile", "num_workers")


def checked_overrides(overrides: dict[str, object], device: torch.device) -> dict[str, object]:
    """Training overrides that exist and make sense on `device` (bf16 autocast needs CUDA)."""
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"cannot override {unknown}; only {list(OVERRIDABLE)}")
    if overrides.get("bf16") and device.type != "cuda":
        raise ValueError(f"bf16 autocast is for CUDA, and the device is {device}")
    return dict(overrides)


def scene_text_roots(roots: Sequence[str | os.PathLike] | None = None) -> tuple[Path, ...]:
    """Scene-text LMDB folders: the argument, else OCRSR_SCENE_TEXT split at os.pathsep."""
    if roots is None:
        roots = [part for part in os.environ.get(SCENE_TEXT_ENV, "").split(os.pathsep) if part]
    return tuple(Path(root).expanduser() for root in roots)


def retrain_requested() -> bool:
    """Whether OCRSR_RETRAIN asks to ignore shipped weights ("1") or not ("0" or unset)."""
    value = os.environ.get(RETRAIN_ENV, "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"{RETRAIN_ENV} is 1 (retrain) or 0 (use shipped weights), not {value!r}")
    return value == "1"


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class Session:
    """What one notebook or command runs with: profile, device, seed and cache."""

    profile: Profile
    device: torch.device
    seed: int
    cache: Cache  # this profile's part of the cache folder
    textzoom: Path | None = None
    scene_text: tuple[Path, ...] = ()  # scene-text LMDBs that CDistNet pretrains on (paper)
    # DIV2K folder that SR pretraining reads instead of the synthetic natural images (paper)
    div2k: Path | None = None
    notes: list[str] = field(default_factory=list)
    # TrainConfig fields that every recipe of this session trains with instead of its own
    # (the command line's --batch-size, --bf16, --channels-last, --compile, --workers)
    train_overrides: dict[str, object] = field(default_factory=dict)
    # official checkpoint files that replace training a recipe (keys of OFFICIAL_RUNS)
    official: dict[str, Path] = field(default_factory=dict)
    # leave unreadable records out of every split read (listed in `skipped`) instead of failing
    skip_corrupt: bool = False
    # the records left out so far: split folder -> [(1-based record index, reason)]
    skipped: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    # train every run that the cache lacks instead of loading the weights shipped with the
    # package (`ocrsr_lib.runs.shipped`); --retrain, OCRSR_RETRAIN=1
    retrain: bool = False

    def describe(self) -> str:
        data = f"real TextZoom at {self.textzoom}" if self.textzoom else "synthetic TextZoom"
        if self.scene_text:
            data += ", scene text " + ", ".join(str(path) for path in self.scene_text)
        overrides = ", ".join(f"{k}={v}" for k, v in self.train_overrides.items()) or "none"
        official = ", ".join(f"{k} from {v}" for k, v in self.official.items()) or "none"
        if self.div2k:
            data += f", DIV2K at {self.div2k}"
        if self.skip_corrupt:
            data += ", unreadable records left out"
        shipped = "ignored (retrain)" if self.retrain else "used where a run's key matches"
        return "\n".join(
            [
                f"profile : {self.profile.name} ({self.profile.description})",
                f"data    : {data}",
                f"device  : {self.device}",
                f"seed    : {self.seed}",
                f"training: recipes as named, overrides: {overrides}",
                f"official: {official}",
                f"shipped : {shipped}",
                f"cache   : {self.cache.root}",
                f"versions: python {platform.python_version()}, torch {torch.__version__}, "
                f"numpy {np.__version__}",
            ]
        )


def setup(
    profile: str | None = None,
    device: str | None = None,
    seed: int = 0,
    textzoom: str | os.PathLike | None = None,
    verbose: bool = True,
    scene_text: Sequence[str | os.PathLike] | None = None,
    train_overrides: dict[str, object] | None = None,
    official: dict[str, str | os.PathLike] | None = None,
    skip_corrupt: bool = False,
    retrain: bool | None = None,
    div2k: str | os.PathLike | None = None,
) -> Session:
    """Pick profile, device, seed and cache, seed everything, print them, return the session.

    `train_overrides` replace TrainConfig fields in every recipe (e.g. batch_size, bf16);
    `official` maps recipes (OFFICIAL_RUNS) to official checkpoint files used instead; it adds
    to (and overrides) those named by OCRSR_OFFICIAL; `skip_corrupt` leaves unreadable records
    out of every split instead of stopping at the first; `retrain` (default: OCRSR_RETRAIN=1)
    trains runs instead of loading the weights shipped with the package; `div2k` (default:
    OCRSR_DIV2K on a real-data profile) is the DIV2K folder SR pretraining reads."""
    chosen = get_profile(profile)
    root = textzoom or (os.environ.get(TEXTZOOM_ENV) if chosen.uses_real_textzoom else None)
    div2k = div2k or (os.environ.get(DIV2K_ENV) if chosen.uses_real_textzoom else None)
    selected = select_device(device)
    session = Session(
        profile=chosen,
        device=selected,
        seed=seed,
        cache=Cache(cache_dir() / chosen.name),
        textzoom=Path(root).expanduser() if root else None,
        div2k=Path(div2k).expanduser() if div2k else None,
        scene_text=scene_text_roots(scene_text),
        train_overrides=checked_overrides(train_overrides or {}, selected),
        official=checked_official(
            {**parse_official(os.environ.get(OFFICIAL_ENV, "")), **(official or {})}
        ),
        skip_corrupt=skip_corrupt,
        retrain=retrain_requested() if retrain is None else retrain,
    )
    seed_everything(seed)
    if verbose:
        print(session.describe())
    return session
