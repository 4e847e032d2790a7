"""The `ocrsr` command line: the notebooks' stages as commands, for full-scale runs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import lmdb
import torch

from ocrsr_lib import distributed
from ocrsr_lib.config import OFFICIAL_RUNS, PROFILES, Session, parse_official, setup
from ocrsr_lib.data import (
    TEST_DIFFICULTIES,
    note_skipped,
    session_splits,
    session_textzoom_root,
    skipped_lines,
)
from ocrsr_lib.data.textzoom import check_split, textzoom_split_folders
from ocrsr_lib.metrics import evaluate_sr
from ocrsr_lib.models import Bicubic
from ocrsr_lib.own_images import (
    ImageInputs,
    check_outputs_free,
    output_files,
    read_images,
    reading_accuracy,
    upscale,
)
from ocrsr_lib.pipelines import (
    BEAM_SIZE,
    EVALUATION_DATA,
    PIPELINES,
    TARGETS,
    BeamReader,
    QuantSetting,
    evaluate_setting,
    pipeline_accuracy,
    pipeline_models,
    quantized_pipeline,
    table_1,
)
from ocrsr_lib.precision import compare_precisions, hard_batches
from ocrsr_lib.progress import progress_bar, progress_updater
from ocrsr_lib.quant.packing import save_packed
from ocrsr_lib.quant.quantizers import GRANULARITIES, METHODS
from ocrsr_lib.results import SWEEP_BITS, quantization_sweep, write_report
from ocrsr_lib.runs import (
    CDISTNET_RECIPES,
    SR_RECIPES,
    check_official_runs,
    recipe_for,
    trained,
    weights_line,
)
from ocrsr_lib.runs.shipped import (
    read_manifest,
    shipped_folder,
    shipped_manifests,
)
from ocrsr_lib.shipping import (
    SHIPPED_BUDGET_BYTES,
    build_order,
    remake_command,
    remove_unshipped,
    ship_run,
    shipped_bytes,
    shipped_status,
    stale_shipped,
)
from ocrsr_lib.tables import format_accuracy, format_report, sweep_table

DEBUG_ENV = "OCRSR_DEBUG"  # 1: errors show their traceback (as --debug)


def session_from(args: argparse.Namespace) -> Session:
    """The session the arguments describe: profile, device, data and training overrides."""
    scene_text = getattr(args, "scene_text", None)
    overrides = {
        name: value
        for name, value in [
            ("batch_size", getattr(args, "batch_size", None)),
            ("num_workers", getattr(args, "workers", None)),
            ("bf16", getattr(args, "bf16", False) or None),
            ("channels_last", getattr(args, "channels_last", False) or None),
            ("compile", getattr(args, "compile", False) or None),
        ]
        if value is not None
    }
    return setup(
        args.profile,
        device=getattr(args, "device", None),
        seed=args.seed,
        textzoom=args.textzoom,
        scene_text=scene_text.split(os.pathsep) if scene_text else None,
        train_overrides=overrides,
        official=parse_official(",".join(args.official or [])),
        skip_corrupt=args.skip_corrupt,
        retrain=getattr(args, "retrain", False) or None,  # unset: OCRSR_RETRAIN decides
        div2k=getattr(args, "div2k", None),
    )


def data_command(args: argparse.Namespace, session: Session) -> int:
    """Prepare the session's TextZoom (generate the synthetic one if needed) and check and
    list its splits: file and keys always, every record decoded with --verify."""
    root = session_textzoom_root(session)
    print(f"TextZoom root: {root}")
    checks = {}
    for name, folder in textzoom_split_folders(root).items():
        with progress_bar(desc=f"verify {name}", disable=not args.verify) as bar:
            checks[name] = check_split(folder, args.verify, progress_updater(bar))
    checks_shown = {"train": [checks["train1"], checks["train2"]]}
    checks_shown.update({name: [checks[name]] for name in TEST_DIFFICULTIES})
    for name, parts in checks_shown.items():
        pairs = sum(check.readable for check in parts)
        unreadable = sum(len(check.skipped) for check in parts)
        print(f"{name:6s} {pairs:7,d} pairs" + (f", {unreadable} unreadable" if unreadable else ""))
    session.skipped.update({str(c.path): c.skipped for c in checks.values() if c.skipped})
    unreadable = skipped_lines(session)
    if unreadable and not args.skip_corrupt:
        print_listed(unreadable)
        raise ValueError(
            f"{len(unreadable)} records cannot be read (listed above); "
            "give --skip-corrupt to leave them out"
        )
    return 0


def train_sr_command(args: argparse.Namespace, session: Session) -> int:
    """Train an SR recipe (resuming, or reusing a finished run) and report PSNR/SSIM on test."""
    run = trained(session, args.recipe)
    if not distributed.is_main_process():
        return 0
    batch_size = recipe_for(session, args.recipe).train.batch_size
    print(f"checkpoint: {run.checkpoint}")
    print(weights_line(run))
    print(
        f"{len(run.result.losses)} steps, {run.result.seconds:.0f} s of training, "
        f"{run.result.images_per_second(batch_size):.1f} images/s"
    )
    splits = session_splits(session)
    test = {name: splits[name] for name in TEST_DIFFICULTIES}
    reports = {"bicubic": evaluate_sr(Bicubic(), test, session.device)}
    reports[args.recipe] = evaluate_sr(run.model, test, session.device)
    print(format_report(reports, "psnr"))
    print(format_report(reports, "ssim"))
    return 0


def train_cdistnet_command(args: argparse.Namespace, session: Session) -> int:
    """Train a CDistNet recipe (pretraining or a fine-tune; resuming, or reusing a finished run)
    and report its word accuracy on the test splits of the images it was trained on."""
    run = trained(session, args.recipe)
    if not distributed.is_main_process():
        return 0
    recipe = recipe_for(session, args.recipe)
    print(f"checkpoint: {run.checkpoint}")
    print(weights_line(run))
    print(
        f"{len(run.result.losses)} steps, {run.result.seconds:.0f} s of training, "
        f"{run.result.images_per_second(recipe.train.batch_size):.1f} images/s"
    )
    row = pipeline_accuracy(session, recipe.images, args.recipe)
    print(format_accuracy({f"{recipe.images} -> {args.recipe}": row}, "images -> CDistNet"))
    return 0


def image_inputs(args: argparse.Namespace, session: Session) -> ImageInputs:
    """The command's INPUT (a folder of images or a TextZoom split), its left-out records noted."""
    inputs = ImageInputs(Path(args.input).expanduser(), session.skip_corrupt)
    if inputs.split is not None:
        note_skipped(session, [inputs.split])
    return inputs


def upscale_command(args: argparse.Namespace, session: Session) -> int:
    """Super-resolve your own word crops (a folder of images, or a TextZoom split's LR images)
    with a trained SR recipe and write one 32x128 PNG each (and labels.tsv for a split)."""
    inputs, folder = image_inputs(args, session), Path(args.out).expanduser()
    check_outputs_free(output_files(inputs, folder))  # before any training
    run = trained(session, args.recipe)
    print(f"{args.recipe}: {weights_line(run)}")
    files = upscale(run.model, inputs, folder, session.device, args.batch)
    print(f"wrote {len(inputs)} images upscaled by {args.recipe} to {folder} ({len(files)} files)")
    return 0


def read_command(args: argparse.Namespace, session: Session) -> int:
    """Read your own word crops (a folder of images, or a TextZoom split's LR images) with a
    trained CDistNet recipe, after an SR recipe (--sr) or bicubic upscaling; prints TSV."""
    inputs = image_inputs(args, session)
    runs = [trained(session, name) for name in (args.sr, args.recipe) if name]
    for run in runs:  # where the weights came from, beside the readings on stdout
        print(f"{run.name}: {weights_line(run)}", file=sys.stderr)
    sr_model = runs[0].model if args.sr else None
    reader = BeamReader(runs[-1].model, args.beam)
    readings = read_images(reader, inputs, sr_model, session.device, args.batch)
    print("file\treading\tlabel")
    for reading in readings:
        print(f"{reading.name}\t{reading.word}\t{reading.label}")
    accuracy = reading_accuracy(readings)
    if accuracy is not None:
        print(f"word accuracy {accuracy:.2%} over {len(readings)} labelled images", file=sys.stderr)
    return 0


def setting_from(args: argparse.Namespace) -> QuantSetting:
    """The quantization setting the arguments name (validated when it is built)."""
    return QuantSetting(args.target, args.bits, args.method, args.granularity)


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse options that cannot work before any data is read or any model trained."""
    if hasattr(args, "target"):
        setting = setting_from(args)
        if args.command == "quantize" and setting.target == "none":
            raise ValueError("choose what to quantize with --target sr, ocr or sr+ocr")


def quantize_command(args: argparse.Namespace, session: Session) -> int:
    """Quantize a trained pipeline's weights (training what is missing) and write packed
    low-bit checkpoints of the SR model and CDistNet; print their sizes."""
    setting = setting_from(args)
    sr, ocr = quantized_pipeline(session, setting, PIPELINES[args.pipeline])
    folder = Path(args.out).expanduser()
    stem = f"{args.pipeline}-{setting.target}-{setting.bits}bit-{setting.method}"
    for part, quantized in (("sr", sr), ("ocr", ocr)):
        if not quantized.plan:
            continue
        path = save_packed(quantized, folder / f"{stem}-{part}.pt")
        size, running = quantized.size(), quantized.running_size()
        print(
            f"{part:3s}: {path} ({path.stat().st_size / 1e6:.2f} MB on disk; "
            f"{size.megabits:.2f} Mbit = {size.megabytes:.2f} MB at the stored widths, "
            f"{running.megabits:.2f} Mbit of it read by the forward)"
        )
    return 0


def evaluate_command(args: argparse.Namespace, session: Session) -> int:
    """Evaluate a pipeline, float or quantized, as in Table 2 (PSNR, accuracy per difficulty,
    size); or, with --table-1, every Table 1 pipeline's accuracy (training what is missing)."""
    if args.table_1:
        print(format_accuracy(table_1(session), "pipeline"))
        return 0
    result = evaluate_setting(
        session, setting_from(args), PIPELINES[args.pipeline], args.beam, args.words
    )
    accuracy = result["accuracy"]
    print(f"PSNR {result['psnr']:.2f} dB")
    print(format_accuracy({args.pipeline: accuracy}, "pipeline"))
    print(
        f"size {result['megabits']:.2f} Mbit = {result['megabytes']:.2f} MB "
        f"({result['running_megabits']:.2f} Mbit read by the forward)"
    )
    return 0


def sweep_command(args: argparse.Namespace, session: Session) -> int:
    """Chapter 5's quantization sweep of a pipeline at full size (every scored word or every
    validation word, or the first --words of each split): SR, OCR and both at each bit width,
    ACIQ and min-max."""
    pipeline = PIPELINES[args.pipeline]
    sweep = quantization_sweep(
        session, bit_widths=args.bits, words=args.words, pipeline=pipeline, data=args.data
    )
    print(sweep_table(sweep))
    return 0


def report_command(args: argparse.Namespace, session: Session) -> int:
    """Write Table 1, its paired comparisons and Table 2 as Markdown (the results chapter's
    tables), computing whatever is not cached."""
    for path in write_report(session, Path(args.out).expanduser()):
        print(path)
    return 0


def precision_command(args: argparse.Namespace, session: Session) -> int:
    """Compare bf16 autocast with float32 on a few test batches: the trained pipeline's SR
    images, CDistNet logits and readings."""
    sr_model, ocr_model = pipeline_models(session, PIPELINES[args.pipeline])
    batches = hard_batches(session, args.batches * args.batch, args.batch)
    report = compare_precisions(sr_model, ocr_model, batches, session.device)
    print("\n".join(report.lines()))
    return 0


def weights_list_command(args: argparse.Namespace, session: Session) -> int:
    """List the weights shipped for the profile: recipe, key, size, training time and device,
    and whether the current recipe still has that key (else the command that re-makes it)."""
    manifests = shipped_manifests(session.profile.name)
    folder = shipped_folder(session.profile.name)
    if not manifests:
        print(f"no weights shipped for profile {session.profile.name!r} (in {folder})")
        return 0
    print(f"weights shipped for profile {session.profile.name!r} in {folder}:")
    print(f"{'recipe':30s}{'key':>14s}{'MB':>8s}{'seconds':>9s}  {'device':8s}{'dtype':9s}status")
    for manifest in manifests:
        print(
            f"{manifest['recipe']:30s}{manifest['key']:>14s}{manifest['bytes'] / 1e6:8.2f}"
            f"{manifest['seconds']:9.0f}  {manifest['device']:8s}{manifest['dtype']:9s}"
            + shipped_status(session, manifest)
        )
    size = shipped_bytes(session.profile.name)
    print(
        f"{len(manifests)} files, {size / 1e6:.2f} MB with manifests "
        f"(budget {SHIPPED_BUDGET_BYTES / 1e6:.0f} MB)"
    )
    print_listed(stale_shipped(session))
    return 0


def weights_build_command(args: argparse.Namespace, session: Session) -> int:
    """Train the profile's shipped runs (all, or those named) in dependency order with their
    recipes, their shipped files ignored, and write each as a shipped file with its manifest;
    runs they depend on but that are not named come from the cache or from current shipped
    files (OCRSR_RETRAIN=1: trained too)."""
    order = build_order(session, args.recipes)
    print(f"building {len(order)} shipped runs in this order: {', '.join(order)}")
    seconds = 0.0
    for name in order:
        path = ship_run(session, name, remake_command(session, name))
        manifest = read_manifest(path)
        seconds += manifest["seconds"]
        print(
            f"{name}: {path} ({manifest['bytes'] / 1e6:.2f} MB; trained in "
            f"{manifest['seconds']:.0f} s on {manifest['device']})"
        )
    if not args.recipes:
        for removed in remove_unshipped(session.profile.name):
            print(f"removed {removed} (no longer shipped)")
    size = shipped_bytes(session.profile.name)
    print(f"shipped set: {size / 1e6:.2f} MB, {seconds:.0f} s of training for these runs")
    if size > SHIPPED_BUDGET_BYTES:
        print(f"warning: over the budget of {SHIPPED_BUDGET_BYTES / 1e6:.0f} MB")
    return 0


def add_quantization_arguments(parser: argparse.ArgumentParser, default_target: str) -> None:
    parser.add_argument("--pipeline", choices=sorted(PIPELINES), default="edsr")
    parser.add_argument("--target", choices=TARGETS, default=default_target)
    parser.add_argument(
        "--bits", type=int, choices=range(2, 9), default=7, help="weight bit width, 2 to 8"
    )
    parser.add_argument("--method", choices=METHODS, default="aciq-mix")
    parser.add_argument("--granularity", choices=GRANULARITIES, default="channel")


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="train runs the cache lacks instead of loading shipped weights (or OCRSR_RETRAIN=1)",
    )


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    add_device_arguments(parser)
    parser.add_argument("--batch-size", type=positive, default=None, help="instead of the recipe's")
    parser.add_argument(
        "--workers", type=non_negative, default=None, help="DataLoader worker processes"
    )
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last memory")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")


def add_session_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None)
    parser.add_argument("--textzoom", default=None, help="real TextZoom root (else OCRSR_TEXTZOOM)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--official",
        action="append",
        metavar="RECIPE=FILE",
        help=f"use an official checkpoint instead of training one of {list(OFFICIAL_RUNS)} "
        "(adds to OCRSR_OFFICIAL; give the same ones to every later command)",
    )
    parser.add_argument(
        "--scene-text",
        default=None,
        help=f"MJSynth/SynthText LMDB folders joined by {os.pathsep!r} (else OCRSR_SCENE_TEXT)",
    )
    parser.add_argument(
        "--div2k",
        default=None,
        help="DIV2K folder that SR pretraining reads (else OCRSR_DIV2K on the paper profile; "
        "without one, synthetic natural images)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the full traceback of an error (or set {DEBUG_ENV}=1)",
    )
    parser.add_argument(
        "--skip-corrupt",
        action="store_true",
        help="leave out unreadable records (counted and listed) instead of stopping at the first",
    )


def positive(text: str) -> int:
    """An integer option that must be at least 1."""
    return bounded_integer(text, 1)


def non_negative(text: str) -> int:
    """An integer option that must be at least 0."""
    return bounded_integer(text, 0)


def bounded_integer(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value} is below the smallest allowed value, {low}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocrsr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help=data_command.__doc__)
    add_session_arguments(data)
    data.add_argument("--verify", action="store_true", help="decode every record (slower)")
    data.set_defaults(run=data_command, device="cpu")
    train = commands.add_parser("train-sr", help=train_sr_command.__doc__)
    train.add_argument("recipe", choices=sorted(SR_RECIPES["demo"]), help="SR recipe to train")
    add_session_arguments(train)
    add_training_arguments(train)
    train.set_defaults(run=train_sr_command)
    cdistnet = commands.add_parser("train-cdistnet", help=train_cdistnet_command.__doc__)
    cdistnet.add_argument(
        "recipe", choices=sorted(CDISTNET_RECIPES["demo"]), help="CDistNet recipe"
    )
    add_session_arguments(cdistnet)
    add_training_arguments(cdistnet)
    cdistnet.set_defaults(run=train_cdistnet_command)
    quantize = commands.add_parser("quantize", help=quantize_command.__doc__)
    add_session_arguments(quantize)
    add_training_arguments(quantize)
    add_quantization_arguments(quantize, "sr+ocr")
    quantize.add_argument("--out", default="quantized", help="folder for the packed checkpoints")
    quantize.set_defaults(run=quantize_command)
    evaluate = commands.add_parser("evaluate", help=evaluate_command.__doc__)
    add_session_arguments(evaluate)
    add_training_arguments(evaluate)
    add_quantization_arguments(evaluate, "none")
    evaluate.add_argument("--beam", type=positive, default=BEAM_SIZE, help="CDistNet beam width")
    evaluate.add_argument("--words", type=positive, default=None, help="first N words per split")
    evaluate.add_argument("--table-1", action="store_true", help="all Table 1 pipelines")
    evaluate.set_defaults(run=evaluate_command)
    sweeping = commands.add_parser("sweep", help=sweep_command.__doc__)
    add_session_arguments(sweeping)
    add_training_arguments(sweeping)
    sweeping.add_argument(
        "--bits", type=int, nargs="+", choices=range(2, 9), default=list(SWEEP_BITS)
    )
    sweeping.add_argument("--words", type=positive, default=None, help="first N words per split")
    sweeping.add_argument("--pipeline", choices=sorted(PIPELINES), default="edsr")
    sweeping.add_argument(
        "--data",
        choices=EVALUATION_DATA,
        default="test",
        help="read the test splits or the validation words (what Table 2's widths are chosen on)",
    )
    sweeping.set_defaults(run=sweep_command)
    report = commands.add_parser("report", help=report_command.__doc__)
    add_session_arguments(report)
    add_training_arguments(report)
    report.add_argument("--out", default="report", help="folder for the Markdown tables")
    report.set_defaults(run=report_command)
    precision = commands.add_parser("check-precision", help=precision_command.__doc__)
    add_session_arguments(precision)
    add_device_arguments(precision)
    precision.add_argument("--pipeline", choices=sorted(PIPELINES), default="edsr")
    precision.add_argument("--batches", type=positive, default=4)
    precision.add_argument("--batch", type=positive, default=32)
    precision.set_defaults(run=precision_command)
    upscaling = commands.add_parser("upscale", help=upscale_command.__doc__)
    upscaling.add_argument("recipe", choices=sorted(SR_RECIPES["demo"]), help="SR recipe")
    add_image_arguments(upscaling)
    upscaling.add_argument("--out", required=True, help="folder for the PNG files (new or empty)")
    upscaling.set_defaults(run=upscale_command)
    reading = commands.add_parser("read", help=read_command.__doc__)
    reading.add_argument("recipe", choices=sorted(CDISTNET_RECIPES["demo"]), help="CDistNet recipe")
    add_image_arguments(reading)
    reading.add_argument(
        "--sr", choices=sorted(SR_RECIPES["demo"]), default=None, help="SR recipe (else bicubic)"
    )
    reading.add_argument("--beam", type=positive, default=BEAM_SIZE, help="CDistNet beam width")
    reading.set_defaults(run=read_command)
    add_weights_commands(commands)
    return parser


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """INPUT, batch size, device and the session options of `upscale` and `read`."""
    parser.add_argument("input", help="a folder of images or a TextZoom LMDB split")
    parser.add_argument("--batch", type=positive, default=64, help="images per batch")
    add_session_arguments(parser)
    add_device_arguments(parser)


def add_weights_commands(commands: argparse._SubParsersAction) -> None:
    """`ocrsr weights list` and `ocrsr weights build`: shipped weights (no data or training
    options: those would change the run keys)."""
    weights = commands.add_parser("weights", help="the trained weights shipped with the package")
    actions = weights.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help=weights_list_command.__doc__)
    build = actions.add_parser("build", help=weights_build_command.__doc__)
    build.add_argument("recipes", nargs="*", metavar="RECIPE", help="default: every shipped run")
    build.add_argument("--device", default="cpu", help="where to train (default: cpu)")
    for parser, command in ((listing, weights_list_command), (build, weights_build_command)):
        parser.add_argument("--profile", choices=sorted(PROFILES), default=None)
        parser.add_argument("--debug", action="store_true", help="show the full traceback")
        parser.set_defaults(run=command, seed=0, textzoom=None, official=None, skip_corrupt=False)
    listing.set_defaults(device="cpu")


def error_message(error: BaseException) -> str:
    """One line saying what failed and where: an OSError's path and cause, an LMDB error's
    cause, or the library's own message."""
    if isinstance(error, OSError) and error.strerror:
        paths = " -> ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
        return f"{paths}: {error.strerror}" if paths else error.strerror
    if isinstance(error, lmdb.Error):
        return f"LMDB error ({type(error).__name__}): {error}"
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error)


def check_session_arguments(args: argparse.Namespace, session: Session) -> None:
    """Refuse what only the session can tell is wrong (a recipe its profile lacks, an official
    file that cannot replace its run) before any work."""
    if getattr(args, "recipe", None):
        recipe_for(session, args.recipe)
    check_official_runs(session)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.debug or os.environ.get(DEBUG_ENV) == "1":
        return run_command(args)
    try:
        return run_command(args)
    except torch.OutOfMemoryError as error:
        batch = getattr(args, "batch_size", None) or "the recipe's"
        print(
            f"ocrsr {args.command}: error: out of GPU memory with batch size {batch} "
            f"({str(error).splitlines()[0]}); try a smaller --batch-size, --bf16, or more GPUs "
            "with torchrun (an interrupted training run resumes from its last checkpoint)",
            file=sys.stderr,
        )
        return 3
    except (OSError, lmdb.Error, KeyError, ValueError, RuntimeError) as error:
        print(f"ocrsr {args.command}: error: {error_message(error)}", file=sys.stderr)
        return 2


def run_command(args: argparse.Namespace) -> int:
    """Check the arguments, run the command, then list any records it left out."""
    check_arguments(args)
    session = session_from(args)
    check_session_arguments(args, session)
    status = args.run(args, session)
    skipped = skipped_lines(session)
    if skipped:
        print(f"left out {len(skipped)} unreadable records:")
        print_listed(skipped)
    return status


LISTED_LINES = 20  # lines of a long list shown on screen (a run's log keeps all of them)


def print_listed(lines: list[str]) -> None:
    """Print the first LISTED_LINES lines and how many more there are."""
    for line in lines[:LISTED_LINES]:
        print(line)
    if len(lines) > LISTED_LINES:
        print(f"... and {len(lines) - LISTED_LINES} more")
