"""The `hip3` command (also `python -m hip3`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from hip3 import __version__
from hip3.config import config_warnings, render_effective
from hip3.launch import EXIT_INVALID, EXIT_OK, load_or_report
from hip3.main import run as run_main
from hip3.risk.hard_stop import HARD_STOP_FILE, reset_persisted
from hip3.sim import cli as sim_cli


def check_config(path: str) -> int:
    """Print the effective configuration (defaults filled in) and its warnings."""
    cfg = load_or_report(path)
    if cfg is None:
        return EXIT_INVALID
    print(render_effective(cfg), end="")
    warnings = config_warnings(cfg)
    for warning in warnings:
        print(f"# warning: {warning}", file=sys.stderr)
    print(f"# {path}: valid ({len(warnings)} warning{'s' if len(warnings) != 1 else ''})", file=sys.stderr)
    return EXIT_OK


def reset_hardstop(path: str) -> int:
    """Clear the persisted latch of the bot configured in `path`; say what was cleared."""
    cfg = load_or_report(path)
    if cfg is None:
        return EXIT_INVALID
    state_file = Path(cfg.persistence.data_dir) / HARD_STOP_FILE
    cleared = reset_persisted(state_file)
    if cleared is None:
        print(f"no hard stop was latched ({state_file})")
    else:
        print(f"cleared the hard stop latched for {cleared.trigger}: {cleared.reason} ({state_file})")
    return EXIT_OK


def run_bot(config: str, check: bool) -> int:
    return trio.run(lambda: run_main(config, check_only=check))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hip3", description="Trade Hyperliquid HIP-3 markets when the book lags."
    )
    parser.add_argument("--version", action="version", version=f"hip3 {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check-config", help="validate a config file and print the effective configuration"
    )
    check.add_argument("file", metavar="FILE")

    run = commands.add_parser("run", help="run the bot (same as `trio-run hip3.main`)")
    run.add_argument("--config", required=True, metavar="FILE")
    run.add_argument(
        "--check", action="store_true", help="validate and print what would run; connect nowhere"
    )

    sim = commands.add_parser("sim", help="run the local Hyperliquid-compatible exchange on loopback")
    sim_cli.add_arguments(sim)

    reset = commands.add_parser(
        "reset-hardstop", help="clear a latched hard stop (the bot must be stopped; it comes back unlatched)"
    )
    reset.add_argument("--config", required=True, metavar="FILE", help="the bot's config (for its data_dir)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        return check_config(args.file)
    if args.command == "sim":
        return sim_cli.run(args)
    if args.command == "reset-hardstop":
        return reset_hardstop(args.config)
    return run_bot(args.config, args.check)
