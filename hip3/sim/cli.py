"""`hip3 sim`: run the local exchange on loopback until interrupted."""

from __future__ import annotations

import argparse
import re
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import attrs
import trio

from hip3.core.exceptions import first_leaf
from hip3.core.serving import BindRefused
from hip3.sim.scenario import Scenario
from hip3.sim.scenario_file import ScenarioError, default_scenario, load_scenario
from hip3.sim.server import RunningSim, check_bind_host, run_sim_server

EXIT_OK = 0
EXIT_INVALID = 1
_FUND = re.compile(r"(0x[0-9a-fA-F]{40})=(.+)")


def parse_fund(text: str) -> tuple[str, Decimal]:
    """`0xADDRESS=USDC` as given to --fund."""
    match = _FUND.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"--fund takes 0xADDRESS=USDC, got {text!r}")
    try:
        amount = Decimal(match.group(2))
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"--fund amount must be a number, got {match.group(2)!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise argparse.ArgumentTypeError(f"--fund amount must be positive, got {match.group(2)!r}")
    return match.group(1).lower(), amount


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (loopback unless --allow-remote)"
    )
    parser.add_argument(
        "--port", type=int, default=8545, help="port for HTTP and WebSocket (0: any free port)"
    )
    parser.add_argument("--scenario", type=Path, help="scenario TOML (default: the shipped default scenario)")
    parser.add_argument("--seed", type=int, help="override the scenario's seed")
    parser.add_argument("--fund", type=parse_fund, action="append", default=[], metavar="0xADDR=USDC")
    parser.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")


def _scenario(args: argparse.Namespace) -> Scenario:
    scenario = load_scenario(args.scenario) if args.scenario else default_scenario()
    return scenario if args.seed is None else attrs.evolve(scenario, seed=args.seed)


def _announce(sim: RunningSim, scenario: Scenario) -> None:
    markets = sum(len(dex.markets) for dex in scenario.dexes)
    print(
        f"hip3 sim ready: {sim.http_url} (ws {sim.ws_url}), {markets} markets, seed {scenario.seed}",
        flush=True,
    )


async def _serve(args: argparse.Namespace, scenario: Scenario) -> None:
    async with trio.open_nursery() as nursery:
        sim = await nursery.start(
            lambda task_status: run_sim_server(
                scenario,
                host=args.host,
                port=args.port,
                fund=args.fund,
                allow_remote=args.allow_remote,
                task_status=task_status,
            )
        )
        _announce(sim, scenario)


def _serve_until_interrupted(args: argparse.Namespace, scenario: Scenario) -> int:
    status = EXIT_OK
    try:
        trio.run(_serve, args, scenario)
    except* KeyboardInterrupt:
        print("hip3 sim stopped", file=sys.stderr)
    except* OSError as failed:
        print(f"hip3 sim: cannot serve on {args.host}:{args.port}: {first_leaf(failed)}", file=sys.stderr)
        status = EXIT_INVALID
    return status


def run(args: argparse.Namespace) -> int:
    try:
        scenario = _scenario(args)
        check_bind_host(args.host, allow_remote=args.allow_remote)
    except (ScenarioError, BindRefused) as exc:
        print(f"hip3 sim: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return _serve_until_interrupted(args, scenario)
