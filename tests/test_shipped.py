"""Weights shipped with the package: written from a trained run, found by the run's key, loaded
without training on an empty cache, ignored by a retrain (which reproduces them exactly on the
CPU), stale when the recipe changes, refused when corrupt; `ocrsr weights build` and `list`; and
the real shipped set checked against the current recipes."""

from __future__ import annotations

import fnmatch
import hashlib
import re
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ocrsr_lib import config, runs, shipping
from ocrsr_lib.checkpoints import CheckpointError
from ocrsr_lib.cli import build_parser, main
from ocrsr_lib.config import SyntheticDataConfig, setup
from ocrsr_lib.data import ensure_synthetic_textzoom
from ocrsr_lib.runs import shipped as shipped_files
from ocrsr_lib.runs import sr
from ocrsr_lib.runs.shipped import MANIFEST_FIELDS, load_shipped, read_manifest

REAL_SHIPPED = shipped_files.SHIPPED_WEIGHTS
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def shipped_folder(tiny_recipes, tmp_path, monkeypatch):
    """Shipped weights go to a temporary folder; OCRSR_RETRAIN unset; tiny SR runs shipped."""
    monkeypatch.setattr(shipped_files, "SHIPPED_WEIGHTS", tmp_path / "shipped")
    monkeypatch.delenv("OCRSR_RETRAIN", raising=False)
    monkeypatch.setitem(shipping.SHIPPED_RUNS, "demo", ("edsr-natural", "stn-edsr", "edsr"))
    return tmp_path / "shipped" / "demo"


def session_on_empty_cache(tiny_recipes, monkeypatch, folder: str, **options):
    """A demo session on the tiny TextZoom with its own, empty cache folder."""
    monkeypatch.setenv("OCRSR_CACHE", str(tiny_recipes.parent / folder))
    return setup("demo", device="cpu", textzoom=tiny_recipes, verbose=False, **options)


def assert_same_tensors(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name


def ship(tiny_recipes, monkeypatch, name: str = "edsr"):
    """Train `name` in a cache of its own and ship it; (shipped file, trained run)."""
    session = session_on_empty_cache(tiny_recipes, monkeypatch, "build-cache")
    path = shipping.ship_run(session, name, shipping.remake_command(session, name))
    return path, runs.trained(session, name)


def test_a_shipped_run_loads_on_an_empty_cache_without_training(
    shipped_folder, tiny_recipes, monkeypatch
):
    path, made = ship(tiny_recipes, monkeypatch)
    assert path.parent == shipped_folder and path.name == f"sr-edsr-{made.key}.safetensors"
    assert path.with_suffix(".json").is_file() and made.source == "cache"

    def no_training(*arguments, **options):
        raise AssertionError("a shipped run was trained")

    monkeypatch.setattr(sr, "train_sr", no_training)
    session = session_on_empty_cache(tiny_recipes, monkeypatch, "fresh-cache")
    assert runs.shipped_file(session, "edsr") == path
    run = runs.trained(session, "edsr")
    assert run.source == "shipped" and run.checkpoint == path and run.key == made.key
    assert not (session.cache.root / "checkpoints").exists()  # nothing written to the cache
    assert not run.model.training
    assert_same_tensors(run.model.state_dict(), made.model.state_dict())
    assert run.result.losses == made.result.losses and run.result.steps == 4
    assert run.result.validations == made.result.validations
    assert run.result.seconds == made.result.seconds > 0
    assert run.result.images_per_second(4) == made.result.images_per_second(4)
    line = runs.weights_line(run)
    assert line.startswith(f"weights: shipped {path} (trained in") and "on cpu" in line


def test_a_retrain_ignores_the_shipped_file_and_reproduces_its_tensors(
    shipped_folder, tiny_recipes, monkeypatch
):
    path, _ = ship(tiny_recipes, monkeypatch)
    retraining = session_on_empty_cache(tiny_recipes, monkeypatch, "retrain-cache", retrain=True)
    assert runs.shipped_file(retraining, "edsr") is None
    run = runs.trained(retraining, "edsr")
    assert run.source == "trained" and run.checkpoint.is_file()
    assert_same_tensors(run.model.state_dict(), load_file(path))
    assert runs.trained(retraining, "edsr").source == "cache"  # retrained once, then cached
    manifest = read_manifest(path)
    again = shipped_files.write_shipped(
        path.with_name("again.safetensors"), run.model, manifest, "float16", manifest["unused"]
    )
    assert again.read_bytes() == path.read_bytes()  # the same tensors make the same bytes
    monkeypatch.setenv("OCRSR_RETRAIN", "1")
    assert setup("demo", device="cpu", verbose=False).retrain
    assert "shipped : ignored (retrain)" in setup("demo", device="cpu", verbose=False).describe()
    monkeypatch.setenv("OCRSR_RETRAIN", "yes")
    with pytest.raises(ValueError, match="OCRSR_RETRAIN is 1"):
        setup("demo", device="cpu", verbose=False)


def test_a_changed_recipe_makes_the_shipped_file_stale_and_trains(
    shipped_folder, tiny_recipes, monkeypatch
):
    path, _ = ship(tiny_recipes, monkeypatch)
    session = session_on_empty_cache(tiny_recipes, monkeypatch, "fresh-cache")
    assert shipping.stale_shipped(session) == []
    demo = dict(sr.SR_RECIPES["demo"])
    demo["edsr"] = replace(demo["edsr"], train=replace(demo["edsr"].train, steps=5))
    monkeypatch.setitem(sr.SR_RECIPES, "demo", demo)
    [line] = shipping.stale_shipped(session)
    assert path.name in line and "recipe 'edsr'" in line
    assert "`ocrsr weights build --profile demo edsr`" in line
    assert runs.shipped_file(session, "edsr") is None
    run = runs.trained(session, "edsr")
    assert run.source == "trained" and len(run.result.losses) == 5
    monkeypatch.setitem(sr.SR_RECIPES, "demo", {"edsr-natural": demo["edsr-natural"]})
    [line] = shipping.stale_shipped(session)
    assert "recipe 'edsr' is gone" in line and "ocrsr weights build --profile demo" in line


def test_a_corrupt_shipped_file_is_refused_naming_it(shipped_folder, tiny_recipes, monkeypatch):
    path, made = ship(tiny_recipes, monkeypatch)
    data = bytearray(path.read_bytes())
    data[-8:] = bytes(255 - byte for byte in data[-8:])  # flip the last tensor's bytes
    path.write_bytes(bytes(data))
    session = session_on_empty_cache(tiny_recipes, monkeypatch, "fresh-cache")
    with pytest.raises(CheckpointError, match=re.escape(str(path)) + ": SHA-256") as refused:
        runs.trained(session, "edsr")
    assert "re-make it with `ocrsr weights build --profile demo edsr`" in str(refused.value)
    path.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match=f"no manifest .* beside the shipped file {path}"):
        load_shipped(made.model, path)


def test_the_manifest_records_how_where_and_from_what_the_file_was_made(
    shipped_folder, tiny_recipes, monkeypatch
):
    path, made = ship(tiny_recipes, monkeypatch)
    manifest = read_manifest(path)
    assert set(MANIFEST_FIELDS) <= set(manifest)
    assert manifest["file"] == path.name and manifest["recipe"] == "edsr"
    assert manifest["profile"] == "demo" and manifest["key"] == made.key
    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["bytes"] == path.stat().st_size and manifest["dtype"] == "float16"
    assert manifest["unused"] == []
    assert manifest["command"] == "ocrsr weights build --profile demo edsr"
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?|unknown", manifest["commit"])
    assert manifest["seconds"] == made.result.seconds > 0
    assert manifest["images_per_second"] == made.result.images_per_second(4)
    assert manifest["steps"] == 4 and manifest["batch_size"] == 4
    assert manifest["device"] == "cpu" and manifest["torch"] == torch.__version__
    assert manifest["threads"] == torch.get_num_threads()
    assert manifest["history"]["losses"] == made.result.losses
    assert manifest["history"]["terms"] == made.result.terms
    # the model's tensors and nothing else: no optimizer state, no training state
    assert load_file(path).keys() == made.model.state_dict().keys()


def test_the_demo_stores_float16_weights_and_a_run_trained_now_holds_the_same(
    shipped_folder, tiny_recipes, monkeypatch
):
    half, made = ship(tiny_recipes, monkeypatch)
    half_size, stored = half.stat().st_size, load_file(half)
    learned = shipped_files.learned_tensor_names(made.model)
    assert all(stored[name].dtype == torch.float16 for name in learned if name in stored)
    assert_same_tensors(  # rounded when training ended: nothing is lost by shipping
        {
            name: t.half() if name in learned and t.is_floating_point() else t
            for name, t in made.model.state_dict().items()
        },
        stored,
    )
    assert all(
        torch.equal(t, t.half().float())
        for name, t in made.model.state_dict().items()
        if name in learned and t.is_floating_point()
    )
    full_precision = replace(config.PROFILES["demo"], weight_storage="float32")
    monkeypatch.setitem(config.PROFILES, "demo", full_precision)
    full, _ = ship(tiny_recipes, monkeypatch)
    assert full != half and not half.exists()  # the storage is in the key; the old file goes
    assert half_size < 0.6 * full.stat().st_size


def test_float16_storage_rounds_what_training_learns_and_never_the_computed_tps_matrices():
    """Rounding the TPS's inverse kernel to float16 moved the demo STN's warp by pixels (the
    bicubic of its output fell from 18.5 to 15.9 dB against HR): computed buffers stay exact."""
    from ocrsr_lib.models import create_model

    torch.manual_seed(0)
    model = create_model("stn-edsr", "demo").eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    built = {name: t.clone() for name, t in model.state_dict().items()}
    learned = shipped_files.learned_tensor_names(model)
    assert {"stn.tps.inverse_kernel", "stn.tps.target_coordinate_repr"}.isdisjoint(learned)
    assert {"stn.stn_head.stn_fc2.weight", "stn.stn_head.stn_convnet.0.1.running_var"} <= learned
    images = torch.rand(4, 3, 16, 64)
    with torch.no_grad():
        warp = model.stn(images)
    shipped_files.round_to_storage(model, "float16")
    state = model.state_dict()
    for name, tensor in built.items():
        if name in learned:
            assert torch.equal(state[name], tensor.half().float()), name
        else:
            assert torch.equal(state[name], tensor), name
    with torch.no_grad():
        kept = (model.stn(images) - warp).abs().mean()
        model.stn.tps.inverse_kernel.copy_(model.stn.tps.inverse_kernel.half())
        broken = (model.stn(images) - warp).abs().mean()
    assert kept < 1e-3 and broken > 10 * kept, (kept, broken)
    stored = shipped_files.stored_tensors(model, "float16")
    assert stored["stn.tps.inverse_kernel"].dtype == torch.float32
    assert stored["stn.stn_head.stn_fc2.weight"].dtype == torch.float16


def test_tensors_the_forward_never_reads_are_left_out_and_kept_as_built(tmp_path):
    from ocrsr_lib.models import create_model, unused_tensor_names

    torch.manual_seed(0)
    model = create_model("cdistnet", "demo")
    unused = unused_tensor_names("cdistnet", model)
    history = {"losses": [], "terms": {}, "validations": []}
    manifest = {"recipe": "pretrain", "key": "0" * 12, "command": "", "history": history}
    manifest |= {field: 0 for field in MANIFEST_FIELDS if field not in manifest}
    path = shipped_files.write_shipped(
        tmp_path / "c.safetensors", model, manifest, "float16", unused
    )
    assert set(load_file(path)) == set(model.state_dict()) - set(unused)
    assert read_manifest(path)["unused"] == sorted(unused)
    torch.manual_seed(0)
    fresh = create_model("cdistnet", "demo")
    load_shipped(fresh, path, "0" * 12)  # the manifest says which tensors the file leaves out
    for name, tensor in model.state_dict().items():
        rounded = tensor.is_floating_point() and name not in unused
        expected = tensor.half().float() if rounded else tensor
        assert torch.equal(fresh.state_dict()[name], expected), name
    with pytest.raises(CheckpointError, match="with key 000000000000, not c.safetensors with"):
        load_shipped(fresh, path, "1" * 12)
    manifest_file = path.with_suffix(".json")
    described = read_manifest(path) | {"unused": []}
    manifest_file.write_text(shipped_files.manifest_text(described))
    with pytest.raises(CheckpointError, match="in_proj_weight"):
        load_shipped(create_model("cdistnet", "demo"), path)  # without them, keys are missing
    manifest_file.write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="a manifest is a JSON object"):
        load_shipped(fresh, path)


@pytest.fixture
def tiny_demo_profile(shipped_folder, tmp_path, monkeypatch):
    """The demo profile's synthetic TextZoom cut to 60 training and 4 test pairs per split (so
    that the commands, which take no --textzoom, run in seconds), generated once."""
    demo = replace(config.PROFILES["demo"], synthetic=SyntheticDataConfig(60, (4, 4, 4)))
    monkeypatch.setitem(config.PROFILES, "demo", demo)
    ensure_synthetic_textzoom(tmp_path / "data", 60, (4, 4, 4), workers=1)
    return shipped_folder


def use_empty_cache(tmp_path, monkeypatch, folder: str) -> None:
    """OCRSR_CACHE names a cache without checkpoints that shares the tiny synthetic data."""
    (tmp_path / folder / "demo").mkdir(parents=True, exist_ok=True)
    datasets = tmp_path / folder / "demo" / "datasets"
    if not datasets.exists():
        datasets.symlink_to(tmp_path / "data" / "datasets")
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path / folder))


def test_weights_build_and_list_commands(tiny_demo_profile, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(shipping.SHIPPED_RUNS, "demo", ("stn-edsr", "edsr-natural"))
    use_empty_cache(tmp_path, monkeypatch, "build-cache")
    assert main(["weights", "build", "--profile", "demo"]) == 0
    printed = capsys.readouterr().out
    assert "in this order: edsr-natural, stn-edsr" in printed and "shipped set:" in printed
    assert len(list(tiny_demo_profile.glob("*.safetensors"))) == 2
    assert main(["weights", "list", "--profile", "demo"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("current") == 2 and "2 files" in printed and "budget 40 MB" in printed
    # a changed start makes both stale: edsr-natural's key enters stn-edsr's
    demo = dict(sr.SR_RECIPES["demo"])
    demo["edsr-natural"] = replace(demo["edsr-natural"], natural_pairs=20)
    monkeypatch.setitem(sr.SR_RECIPES, "demo", demo)
    assert main(["weights", "list", "--profile", "demo"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("stale") == 2
    assert "`ocrsr weights build --profile demo stn-edsr`" in printed
    assert main(["weights", "build", "--profile", "demo", "edsr-natural"]) == 0
    [manifest] = [m for m in shipping.shipped_manifests("demo") if m["recipe"] == "edsr-natural"]
    assert manifest["key"] == runs.run_key(setup("demo", verbose=False), "edsr-natural")
    assert len(list(tiny_demo_profile.glob("*.safetensors"))) == 2  # the old one replaced
    # building one run on an empty cache reads what it starts from from the current shipped file
    use_empty_cache(tmp_path, monkeypatch, "one-run-cache")
    assert main(["weights", "build", "--profile", "demo", "stn-edsr"]) == 0
    built = {path.name.split("-")[1] for path in (tmp_path / "one-run-cache").rglob("sr-*.pt")}
    assert built == {"stn"}, built  # stn-edsr trained; edsr-natural not retrained
    use_empty_cache(tmp_path, monkeypatch, "build-cache")
    monkeypatch.setitem(shipping.SHIPPED_RUNS, "demo", ("edsr-natural",))
    assert main(["weights", "build", "--profile", "demo"]) == 0
    assert "no longer shipped" in capsys.readouterr().out
    assert [m["recipe"] for m in shipping.shipped_manifests("demo")] == ["edsr-natural"]
    assert main(["weights", "build", "--profile", "demo", "edsr"]) == 2
    assert "not shipped for 'demo'" in capsys.readouterr().err


def test_train_sr_uses_shipped_weights_and_a_retrain_prints_the_same_evaluation(
    tiny_demo_profile, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(shipping.SHIPPED_RUNS, "demo", ("edsr-natural",))
    use_empty_cache(tmp_path, monkeypatch, "build-cache")
    assert main(["weights", "build", "--profile", "demo"]) == 0
    capsys.readouterr()
    evaluations = []
    for folder, retrain in (("empty-cache", []), ("retrain-cache", ["--retrain"])):
        use_empty_cache(tmp_path, monkeypatch, folder)
        assert main(["train-sr", "edsr-natural", "--profile", "demo", *retrain]) == 0
        lines = capsys.readouterr().out.splitlines()
        weights = next(line for line in lines if line.startswith("weights:"))
        assert lines[lines.index(weights) - 1].startswith("checkpoint: ")
        evaluations.append(lines[lines.index(weights) + 2 :])
        expected = "weights: trained now" if retrain else "weights: shipped"
        assert weights.startswith(expected)
    assert evaluations[0] == evaluations[1] and "bicubic" in evaluations[0][1]


def test_every_training_command_takes_retrain():
    parser = build_parser()
    for command in (
        ["train-sr", "edsr"],
        ["train-cdistnet", "pretrain"],
        ["quantize"],
        ["evaluate"],
        ["report"],
        ["check-precision"],
    ):
        assert parser.parse_args([*command, "--retrain"]).retrain, command
    assert not hasattr(parser.parse_args(["weights", "build"]), "retrain")  # OCRSR_RETRAIN decides


def real_session(profile: str, tmp_path, monkeypatch, retrain: bool = False):
    """A session of the profile as a fresh clone sees it: no data, official or retrain settings."""
    for variable in ("OCRSR_TEXTZOOM", "OCRSR_OFFICIAL", "OCRSR_RETRAIN", "OCRSR_SCENE_TEXT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("OCRSR_CACHE", str(tmp_path / "cache"))
    return setup(profile, device="cpu", verbose=False, retrain=retrain)


def real_profiles() -> list[str]:
    return sorted(folder.name for folder in REAL_SHIPPED.glob("*") if folder.is_dir())


def test_every_shipped_file_matches_its_recipe(tmp_path, monkeypatch):
    """Each file in ocrsr_lib/shipped_weights: intact (SHA-256), shipped on purpose, and keyed
    by its recipe's current key; a recipe change fails here, naming the command that re-makes
    the file."""
    total, stale = 0, []
    for profile in real_profiles():
        session = real_session(profile, tmp_path, monkeypatch)
        for manifest in shipped_files.shipped_manifests(profile):
            path = REAL_SHIPPED / profile / manifest["file"]
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert digest == manifest["sha256"], f"{path} is corrupt: re-run {manifest['command']}"
            assert manifest["recipe"] in shipping.SHIPPED_RUNS.get(profile, ()), path
            if runs.run_key(session, manifest["recipe"]) != manifest["key"]:
                stale.append(f"{path.name} (re-make it: `{manifest['command']}`)")
        total += shipping.shipped_bytes(profile)
    assert not stale, (
        "shipped files whose recipe (or a recipe it starts from) has changed:\n  "
        + "\n  ".join(stale)
        + "\nor re-make the whole set: `ocrsr weights build --profile PROFILE`"
    )
    assert total <= shipping.SHIPPED_BUDGET_BYTES


def test_every_run_a_profile_ships_has_a_current_file(tmp_path, monkeypatch):
    """The chapters and make test's nbval load these instead of training for hours: a missing
    or stale file fails here, naming the command that makes it."""
    for profile, names in shipping.SHIPPED_RUNS.items():
        session = real_session(profile, tmp_path, monkeypatch)
        missing = [name for name in names if runs.shipped_file(session, name) is None]
        assert not missing, (
            f"no current shipped file for {missing} ({profile}): run `ocrsr weights build "
            f"--profile {profile} {' '.join(missing)}`"
        )


def test_every_shipped_file_is_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = patterns["package-data"]["ocrsr_lib"]
    package = REAL_SHIPPED.parent
    for path in REAL_SHIPPED.rglob("*"):
        if path.is_file():
            relative = path.relative_to(package).as_posix()
            assert any(fnmatch.fnmatch(relative, pattern) for pattern in patterns), relative


def test_the_cheapest_shipped_run_retrains_to_the_shipped_tensors(tmp_path, monkeypatch):
    """On the CPU training is deterministic for a given number of threads and instruction set,
    both recorded in the manifest; the run whose retrain costs least (its own recorded seconds
    plus those of every run it starts from, all retrained) is retrained and compared."""
    chains = []
    for profile in real_profiles():
        session = real_session(profile, tmp_path, monkeypatch)
        manifests = {m["recipe"]: m for m in shipping.shipped_manifests(profile)}
        for name, manifest in manifests.items():
            chain = [manifests.get(needed) for needed in runs.needed_runs(session, [name])]
            if manifest["device"] == "cpu" and None not in chain:
                chains.append((sum(m["seconds"] for m in chain), profile, manifest))
    if not chains:
        pytest.skip("no weights trained on the CPU are shipped yet")
    _, profile, manifest = min(chains, key=lambda entry: entry[0])
    if manifest["cpu_capability"] != torch.backends.cpu.get_cpu_capability():
        pytest.skip(f"shipped from a {manifest['cpu_capability']} CPU, this one differs")
    threads = torch.get_num_threads()
    torch.set_num_threads(manifest["threads"])
    try:
        session = real_session(profile, tmp_path, monkeypatch, retrain=True)
        run = runs.trained(session, manifest["recipe"])
    finally:
        torch.set_num_threads(threads)
    shipped_tensors = load_file(REAL_SHIPPED / profile / manifest["file"])
    dtype = shipped_files.STORAGE_DTYPES[manifest["dtype"]]
    learned = shipped_files.learned_tensor_names(run.model)
    retrained = {
        name: tensor.to(dtype) if name in learned and tensor.is_floating_point() else tensor
        for name, tensor in run.model.state_dict().items()
    }
    assert_same_tensors(retrained, shipped_tensors)


def test_a_changed_model_size_changes_the_key(tiny_recipes, monkeypatch):
    """A size name's meaning is part of the key: shipped weights of an older size never load."""
    from ocrsr_lib.models.edsr import EDSR_CONFIGS

    session = session_on_empty_cache(tiny_recipes, monkeypatch, "cache")
    before = runs.run_key(session, "edsr")
    monkeypatch.setitem(EDSR_CONFIGS, "demo", replace(EDSR_CONFIGS["demo"], features=16))
    assert runs.run_key(session, "edsr") != before


def test_the_cdistnet_tensors_declared_unused_are_those_no_gradient_reaches():
    from ocrsr_lib.models import create_model, unused_tensor_names

    torch.manual_seed(0)
    model = create_model("cdistnet", "demo").train()
    images, targets = torch.rand(2, 3, 32, 128), torch.randint(4, 30, (2, 12))
    model(images, targets).float().sum().backward()
    no_gradient = {name for name, p in model.named_parameters() if p.grad is None}
    assert set(unused_tensor_names("cdistnet", model)) == no_gradient
    assert len(no_gradient) == 61  # per attention: in_proj and the other kind's projections
    sr = create_model("stn-edsr", "demo").train()
    sr(torch.rand(2, 3, 16, 64)).sum().backward()
    assert unused_tensor_names("stn-edsr", sr) == []
    assert all(p.grad is not None for p in sr.parameters() if p.requires_grad)


def test_chapter_costs_name_each_runs_source_and_its_recorded_and_gpu_times(
    shipped_folder, tiny_recipes, monkeypatch
):
    from ocrsr_lib.costs import GPU_RECORD, GPU_SECTION, chapter_costs, costs_table
    from ocrsr_lib.records import recorded_rates

    path, made = ship(tiny_recipes, monkeypatch, "edsr-natural")
    session = session_on_empty_cache(tiny_recipes, monkeypatch, "reader-cache")
    natural, stn_edsr = chapter_costs(session, ["stn-edsr"])  # what stn-edsr starts from first
    rate = recorded_rates(GPU_RECORD, GPU_SECTION)["SR training (MSE), STN+EDSR demo, batch 16"]
    assert (natural.recipe, natural.source, natural.device) == ("edsr-natural", "shipped", "cpu")
    assert natural.seconds == read_manifest(path)["seconds"] == made.result.seconds
    assert natural.images == 16 and natural.gpu_seconds == pytest.approx(16 / rate)
    assert (stn_edsr.source, stn_edsr.seconds, stn_edsr.images) == ("trained when run", None, 16)
    runs.trained(session, "stn-edsr")
    assert [cost.source for cost in chapter_costs(session, ["stn-edsr"])] == ["shipped", "cache"]
    table = costs_table(chapter_costs(session, ["stn-edsr"]))
    assert "| edsr-natural | shipped | 16 |" in table and "not recorded" in table
    assert table.splitlines()[-1].startswith("| all |")
    # an interrupted run's checkpoint resumes training when the chapter runs
    from ocrsr_lib.checkpoints import load_checkpoint, save_checkpoint

    cached = runs.checkpoint_path(session, "stn-edsr")
    save_checkpoint(cached, load_checkpoint(cached) | {"step": 1})
    assert chapter_costs(session, ["stn-edsr"])[1].source == "cache, resumes"


def test_a_dependency_of_available_runs_only_is_needed_only_to_retrain(
    shipped_folder, tiny_recipes, monkeypatch
):
    from ocrsr_lib.costs import chapter_costs

    ship(tiny_recipes, monkeypatch, "stn-edsr")  # ships stn-edsr, not what it starts from
    session = session_on_empty_cache(tiny_recipes, monkeypatch, "reader-cache")
    natural, stn_edsr = chapter_costs(session, ["stn-edsr"])
    assert (natural.source, stn_edsr.source) == ("only to retrain", "shipped")
    assert natural.images == 16 and natural.seconds is None


def test_the_chapter_header_counts_sources_and_totals(shipped_folder, tiny_recipes, monkeypatch):
    from ocrsr_lib.costs import costs_markdown

    path, _ = ship(tiny_recipes, monkeypatch, "edsr-natural")
    session = session_on_empty_cache(tiny_recipes, monkeypatch, "reader-cache")
    text = costs_markdown(session, ["stn-edsr"])
    seconds = read_manifest(path)["seconds"]
    assert text.startswith("This chapter uses 2 trained runs (1 shipped, 1 trained when run).")
    assert f"took {seconds / 60:.1f} min when the shipped weights were made (1 of 2" in text
    assert "H200" in text and "(2 of 2 runs have a recorded rate)" in text
    assert (
        costs_markdown(session, []) == "This chapter loads no trained weights and trains nothing."
    )
