"""The `ocrsr` command line: the notebooks' stages as commands, for full-scale runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ocrsr_lib.config import PROFILES, setup
from ocrsr_lib.data import session_splits, session_textzoom_root


def data_command(args: argparse.Namespace) -> int:
    """Prepare the session's TextZoom (generate the synthetic one if needed) and list its splits."""
    session = setup(args.profile, device="cpu", seed=args.seed, textzoom=args.textzoom)
    root = session_textzoom_root(session)
    splits = session_splits(session, skip_corrupt=args.skip_corrupt)
    print(f"TextZoom root: {root}")
    for name, split in splits.items():
        print(f"{name:6s} {len(split):7,d} pairs")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocrsr", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help=data_command.__doc__)
    data.add_argument("--profile", choices=sorted(PROFILES), default=None)
    data.add_argument("--textzoom", default=None, help="real TextZoom root (else OCRSR_TEXTZOOM)")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--skip-corrupt", action="store_true", help="leave out unreadable records")
    data.set_defaults(run=data_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"ocrsr {args.command}: error: {error}", file=sys.stderr)
        return 2
