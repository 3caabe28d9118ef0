"""Start-up checks shared by `hip3` and `hip3.main`: load the config, say what would run, prove the key.

Nothing here connects anywhere.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from hip3 import __version__
from hip3.config import Config, ConfigError, config_warnings, load_config
from hip3.keys import KEY_ENV_VAR, SigningKeyError, load_signing_key, verify_signing_key
from hip3.protocol.signing import SigningKey

EXIT_OK = 0
EXIT_INVALID = 1


def load_or_report(path: Path | str, err: TextIO | None = None) -> Config | None:
    """The config at `path`, or None after printing every problem in it."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=err or sys.stderr)
        return None


def _market_line(cfg: Config) -> str:
    dexes = ", ".join(cfg.markets.dexes) or "every builder dex"
    if not cfg.markets.allowlist:
        return f"all markets of {dexes}"
    coins = ", ".join(entry.coin for entry in cfg.markets.allowlist)
    return f"{coins} (dexes: {dexes})"


def _limits_line(cfg: Config) -> str:
    pos = cfg.position
    return (
        f"${pos.max_notional_per_market} per market, ${pos.max_total_notional} in total, "
        f"{pos.max_concurrent_positions} concurrent positions, ${cfg.detector.max_notional} per order"
    )


def describe_run(cfg: Config) -> list[str]:
    net = cfg.network
    trading = cfg.is_trading
    what = (
        "takes dislocations with IOC orders" if trading else "detects and records; never sends to /exchange"
    )
    lines = [
        f"hip3 {__version__} would run:",
        f"  mode      {cfg.mode} ({what})",
        f"  network   {net.name}: {net.api_url} and {net.ws_url}, signing for {net.sign_as}",
        f"  markets   {_market_line(cfg)}",
        f"  limits    {_limits_line(cfg)}" + ("" if trading else " (unused in observation)"),
    ]
    if trading:
        account = cfg.account
        lines.append(
            f"  account   {account.account_address}"
            + (f" via vault {account.vault_address}" if account.vault_address else "")
        )
    return lines


def load_proven_key(cfg: Config, environ: Mapping[str, str] | None = None) -> SigningKey:
    """Load the key and run the signer self-check (before anything connects). Raises SigningKeyError."""
    key = load_signing_key(cfg.account.key_file, os.environ if environ is None else environ)
    verify_signing_key(key, signer_address=cfg.account.signer_address, is_mainnet=cfg.network.is_mainnet)
    return key


def preflight(
    cfg: Config,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print what would run, the warnings, and (in trading mode) the key check. Returns the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    for line in describe_run(cfg):
        print(line, file=out)
    for warning in config_warnings(cfg):
        print(f"  warning   {warning}", file=out)
    if not cfg.is_trading:
        print(f"  key       not needed in observation ({KEY_ENV_VAR} is not read)", file=out)
        return EXIT_OK
    try:
        signer = load_proven_key(cfg, environ).address
    except SigningKeyError as exc:
        print(f"  key       FAILED: {exc}", file=err)
        return EXIT_INVALID
    print(f"  key       signer {signer}: self-check passed (signed and recovered a dummy action)", file=out)
    return EXIT_OK
