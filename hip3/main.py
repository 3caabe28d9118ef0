"""What `trio-run hip3.main --config FILE [--check]` runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hip3.app import run_bot
from hip3.keys import SigningKeyError
from hip3.launch import EXIT_INVALID, EXIT_OK, load_or_report, preflight
from hip3.market.preflight import PreflightError
from hip3.ops.logging import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trio-run hip3.main", description="Run the hip3 bot.")
    parser.add_argument("--config", required=True, metavar="FILE", help="configuration file (TOML)")
    parser.add_argument(
        "--check", action="store_true", help="validate, print what would run, and exit without connecting"
    )
    return parser


async def run(config_path: str, *, check_only: bool) -> int:
    cfg = load_or_report(config_path)
    if cfg is None:
        return EXIT_INVALID
    if check_only:
        return preflight(cfg)
    configure_logging(level=cfg.telemetry.log_level, fmt=cfg.telemetry.log_format)
    status = EXIT_OK
    try:
        await run_bot(cfg, handle_signals=True)
    except* (SigningKeyError, PreflightError) as refused:
        for exc in refused.exceptions:
            print(f"hip3: {exc}", file=sys.stderr)
        status = EXIT_INVALID
    return status


async def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    return await run(args.config, check_only=args.check)
