"""The `ocrsr` command line: the notebooks' stages as commands, for full-scale runs."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ocrsr_lib import distributed
from ocrsr_lib.cdistnet_recipes import (
    CDISTNET_RECIPES,
    cdistnet_recipe_for,
    pipeline_accuracy,
    trained_cdistnet,
)
from ocrsr_lib.config import PROFILES, setup
from ocrsr_lib.data import TEST_DIFFICULTIES, session_splits, session_textzoom_root
from ocrsr_lib.metrics import evaluate_sr, format_report
from ocrsr_lib.models import Bicubic
from ocrsr_lib.reading import format_accuracy
from ocrsr_lib.recipes import SR_RECIPES, recipe_for, trained_sr


def data_command(args: argparse.Namespace) -> int:
    """Prepare the session's TextZoom (generate the synthetic one if needed) and list its splits."""
    session = setup(args.profile, device="cpu", seed=args.seed, textzoom=args.textzoom)
    root = session_textzoom_root(session)
    splits = session_splits(session, skip_corrupt=args.skip_corrupt)
    print(f"TextZoom root: {root}")
    for name, split in splits.items():
        print(f"{name:6s} {len(split):7,d} pairs")
    return 0


def train_sr_command(args: argparse.Namespace) -> int:
    """Train an SR recipe (resuming, or reusing a finished run) and report PSNR/SSIM on test."""
    session = setup(args.profile, device=args.device, seed=args.seed, textzoom=args.textzoom)
    run = trained_sr(session, args.recipe)
    if not distributed.is_main_process():
        return 0
    batch_size = recipe_for(session, args.recipe).train.batch_size
    print(f"checkpoint: {run.checkpoint}")
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


def train_cdistnet_command(args: argparse.Namespace) -> int:
    """Train a CDistNet recipe (pretraining or a fine-tune; resuming, or reusing a finished run)
    and report its word accuracy on the test splits of the images it was trained on."""
    scene_text = args.scene_text.split(os.pathsep) if args.scene_text else None
    session = setup(
        args.profile,
        device=args.device,
        seed=args.seed,
        textzoom=args.textzoom,
        scene_text=scene_text,
    )
    run = trained_cdistnet(session, args.recipe)
    if not distributed.is_main_process():
        return 0
    recipe = cdistnet_recipe_for(session, args.recipe)
    print(f"checkpoint: {run.checkpoint}")
    print(
        f"{len(run.result.losses)} steps, {run.result.seconds:.0f} s of training, "
        f"{run.result.images_per_second(recipe.train.batch_size):.1f} images/s"
    )
    row = pipeline_accuracy(session, recipe.images, args.recipe)
    print(format_accuracy({f"{recipe.images} -> {args.recipe}": row}, "images -> CDistNet"))
    return 0


def add_session_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None)
    parser.add_argument("--textzoom", default=None, help="real TextZoom root (else OCRSR_TEXTZOOM)")
    parser.add_argument("--seed", type=int, default=0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocrsr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help=data_command.__doc__)
    add_session_arguments(data)
    data.add_argument("--skip-corrupt", action="store_true", help="leave out unreadable records")
    data.set_defaults(run=data_command)
    train = commands.add_parser("train-sr", help=train_sr_command.__doc__)
    train.add_argument("recipe", choices=sorted(SR_RECIPES["demo"]), help="SR recipe to train")
    add_session_arguments(train)
    train.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    train.set_defaults(run=train_sr_command)
    cdistnet = commands.add_parser("train-cdistnet", help=train_cdistnet_command.__doc__)
    cdistnet.add_argument(
        "recipe", choices=sorted(CDISTNET_RECIPES["demo"]), help="CDistNet recipe"
    )
    add_session_arguments(cdistnet)
    cdistnet.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    cdistnet.add_argument(
        "--scene-text",
        default=None,
        help=f"MJSynth/SynthText LMDB folders joined by {os.pathsep!r} (else OCRSR_SCENE_TEXT)",
    )
    cdistnet.set_defaults(run=train_cdistnet_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as error:
        print(f"ocrsr {args.command}: error: {error}", file=sys.stderr)
        return 2
