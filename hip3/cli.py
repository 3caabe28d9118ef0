"""The `hip3` command (also `python -m hip3`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from hip3 import __version__, demo
from hip3.config import config_warnings, render_effective
from hip3.core.clock import system_wall_ms
from hip3.launch import EXIT_INVALID, EXIT_OK, load_or_report
from hip3.main import run as run_main
from hip3.ops.config_docs import write_configuration_doc
from hip3.ops.report import build_report, parse_since, render_table, report_json
from hip3.replay import run as replay
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


def report(args: argparse.Namespace) -> int:
    """Summarise the journal's round trips of a period, as a table or JSON."""
    path = Path(args.journal) if args.journal else _journal_of(args.config)
    if path is None:
        return EXIT_INVALID
    try:
        since_ms = system_wall_ms() - parse_since(args.since)
        summary = build_report(path, since_ms=since_ms)
    except ValueError as exc:
        print(f"hip3 report: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except FileNotFoundError:
        print(f"hip3 report: no journal at {path} (has the bot run with this data_dir?)", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        print(json.dumps(report_json(summary), indent=2))
    else:
        print(render_table(summary), end="")
    return EXIT_OK


def _journal_of(config: str) -> Path | None:
    cfg = load_or_report(config)
    return None if cfg is None else Path(cfg.persistence.journal_path)


def docs_config(path: str) -> int:
    changed = write_configuration_doc(Path(path))
    print(f"{path}: {'written' if changed else 'already current'}")
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

    rep = commands.add_parser("report", help="PnL, win rate and edge captured per market from the journal")
    source = rep.add_mutually_exclusive_group()
    source.add_argument("--config", default="config/default.toml", metavar="FILE", help="the bot's config")
    source.add_argument("--journal", metavar="FILE", help="a journal file (instead of the config's)")
    rep.add_argument("--since", default="24h", help="period: 90s, 30m, 24h, 7d (default 24h)")
    rep.add_argument("--json", action="store_true", help="JSON instead of a table")

    docs = commands.add_parser("docs-config", help="regenerate the configuration reference page")
    docs.add_argument("--output", default="docs/configuration.md", metavar="FILE")

    demo_parser = commands.add_parser(
        "demo", help="trade the built-in exchange on loopback with a throwaway key, with the dashboard"
    )
    demo.add_arguments(demo_parser)

    replay_parser = commands.add_parser(
        "replay", help="drive a market recording through the bot against its recorded books; print the report"
    )
    replay.add_arguments(replay_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        return check_config(args.file)
    if args.command == "sim":
        return sim_cli.run(args)
    if args.command == "reset-hardstop":
        return reset_hardstop(args.config)
    if args.command == "report":
        return report(args)
    if args.command == "docs-config":
        return docs_config(args.output)
    if args.command == "demo":
        return demo.run(args)
    if args.command == "replay":
        return replay.run(args)
    return run_bot(args.config, args.check)
