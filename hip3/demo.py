"""`hip3 demo`: the bot trading against the project's own exchange simulator on loopback.

One process, one command, nothing leaves the machine:

1. the simulator starts on 127.0.0.1 with a free port (`run_sim_server`, the scenario's markets moving);
2. a throwaway signing key is made in memory and its address funded in the simulator (it reaches the bot
   through `run_bot`'s `environ`, never the disk or the real environment);
3. `config/sim.toml` is loaded and pointed at that simulator, that account, a fresh data directory (so no real
   bot's data or hard-stop latch is touched) and the dashboard port asked for;
4. the bot runs in trading mode while a status line reports signals, orders, fills, round trips and PnL;
5. at the end (`--duration`, Ctrl-C or SIGTERM) the bot's own shutdown sequence cancels resting orders and
   flattens, the simulator stops, and the summary is printed (and written with `--summary-json`). Where the
   exchange's view matters (the largest notional held per market, open orders and positions at the end),
   the summary reads the simulator's own ledger (`simAudit`), not the bot's belief.

A second Ctrl-C during the shutdown abandons it: everything is cancelled and the summary shows what was left.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import secrets
import socket
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, TextIO, cast

import attrs
import trio

from hip3.app import Running, run_bot
from hip3.app_ops import DASHBOARD_TOKEN_ENV
from hip3.app_trading import Desk, graceful_shutdown
from hip3.config import Config, ConfigError, load_config
from hip3.execution.shutdown import wait_for_signals
from hip3.keys import KEY_ENV_VAR, SigningKeyError
from hip3.market.preflight import PreflightError
from hip3.ops.logging import configure_logging
from hip3.protocol.signing import SigningKey
from hip3.risk.monitor import RiskFigures
from hip3.sim.scenario import Scenario
from hip3.sim.scenario_file import ScenarioError, default_scenario, load_scenario
from hip3.sim.server import RunningSim, run_sim_server

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_FAILED = 2

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "sim.toml"
DEFAULT_DASHBOARD_PORT = 8080
FUNDING_USDC = Decimal(10_000)
LOOPBACK = "127.0.0.1"
STATUS_INTERVAL_S = 1.0  # on a terminal: one line, rewritten in place
PLAIN_STATUS_INTERVAL_S = 5.0  # to a pipe or a file: a new line this often
SUMMARY_KEYS = (
    "signals",
    "orders",
    "fills",
    "round_trips",
    "win_rate",
    "realized_pnl_usd",
    "fees_usd",
    "cap_per_market_usd",
    "max_notional_by_market",
    "open_orders_at_end",
    "positions_at_end",
    "tick_to_order_us",
    "duration_s",
)


# -- options --------------------------------------------------------------------------------------------


@attrs.frozen
class DemoOptions:
    duration_s: float | None = None  # None: until Ctrl-C or SIGTERM
    summary_json: Path | None = None
    seed: int | None = None
    scenario: Path | None = None  # None: the shipped default scenario
    data_dir: Path | None = None  # None: a fresh temporary directory, removed at the end
    dashboard: bool = True
    dashboard_port: int = DEFAULT_DASHBOARD_PORT  # 0: any free port
    config: Path = DEFAULT_CONFIG


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=_positive_seconds,
        metavar="SECONDS",
        help="stop after this long (default: Ctrl-C)",
    )
    parser.add_argument("--summary-json", type=Path, metavar="FILE", help="write the summary here as JSON")
    parser.add_argument("--seed", type=int, help="override the scenario's seed")
    parser.add_argument(
        "--scenario", type=Path, metavar="FILE", help="scenario TOML (default: the shipped default scenario)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="the bot's data directory (default: a fresh temporary one, removed at the end)",
    )
    parser.add_argument("--no-dashboard", action="store_true", help="do not serve the dashboard")
    parser.add_argument(
        "--dashboard-port",
        type=_port,
        default=DEFAULT_DASHBOARD_PORT,
        metavar="N",
        help=f"dashboard port on {LOOPBACK} (default {DEFAULT_DASHBOARD_PORT}; 0: any free port)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        metavar="FILE",
        help="bot config (default: config/sim.toml)",
    )


def options_from(args: argparse.Namespace) -> DemoOptions:
    return DemoOptions(
        duration_s=args.duration,
        summary_json=args.summary_json,
        seed=args.seed,
        scenario=args.scenario,
        data_dir=args.data_dir,
        dashboard=not args.no_dashboard,
        dashboard_port=args.dashboard_port,
        config=args.config,
    )


# -- set-up: scenario, key, config ------------------------------------------------------------------------


def load_demo_scenario(options: DemoOptions) -> Scenario:
    scenario = load_scenario(options.scenario) if options.scenario else default_scenario()
    return scenario if options.seed is None else attrs.evolve(scenario, seed=options.seed)


def throwaway_key() -> tuple[str, str]:
    """A fresh signing key as (hex for HIP3_TRADING_KEY, its address); held in memory only."""
    while True:
        secret = secrets.token_bytes(32)
        try:
            address = SigningKey.from_bytes(secret).address
        except ValueError:  # zero or above the curve order: about one chance in 2**128
            continue
        return "0x" + secret.hex(), address


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now (the dashboard's config needs a number, not 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def demo_config(
    base: Config,
    *,
    sim: RunningSim,
    is_mainnet: bool,
    address: str,
    data_dir: Path,
    dashboard: bool,
    dashboard_port: int,
) -> Config:
    """`base` pointed at the simulator, the throwaway account, the demo's data directory and dashboard."""
    network = attrs.evolve(
        base.network,
        name="local",
        api_url=sim.http_url,
        ws_url=sim.ws_url,
        sign_as="mainnet" if is_mainnet else "testnet",
    )
    account = attrs.evolve(
        base.account, account_address=address, signer_address=None, vault_address=None, key_file=None
    )
    persistence = attrs.evolve(
        base.persistence, data_dir=data_dir, journal_path=data_dir / base.persistence.journal_path.name
    )
    port = dashboard_port or free_port(base.dashboard.host)
    return attrs.evolve(
        base,
        mode="trading",
        network=network,
        account=account,
        persistence=persistence,
        dashboard=attrs.evolve(base.dashboard, enabled=dashboard, port=port),
    )


# -- the figures --------------------------------------------------------------------------------------------


@attrs.frozen
class Progress:
    """What the status line shows."""

    elapsed_s: float
    connection: str
    hard_stop: str  # "clear" or "LATCHED (<trigger>)"
    signals: int
    orders: int
    fills: int
    round_trips: int
    realized_pnl_usd: Decimal
    open_positions: int
    dashboard_url: str | None


def status_line(p: Progress) -> str:
    minutes, seconds = divmod(int(p.elapsed_s), 60)
    dashboard = p.dashboard_url or "off"
    return (
        f"{minutes:02d}:{seconds:02d}  {p.connection}  signals {p.signals}  orders {p.orders}  "
        f"fills {p.fills}  round trips {p.round_trips}  pnl {p.realized_pnl_usd:+.4f} USD  "
        f"open {p.open_positions}  hard stop {p.hard_stop}  dashboard {dashboard}"
    )


def _nonzero(text: object) -> bool:
    return isinstance(text, str) and Decimal(text) != 0


def build_summary(
    *,
    counts: Mapping[str, int],
    order_outcomes: Mapping[str, int],
    figures: RiskFigures,
    cap_per_market_usd: Decimal,
    audit: Mapping[str, Any],
    open_orders: int,
    tick_to_order_us: Mapping[str, Any],
    duration_s: float,
) -> dict[str, Any]:
    """The summary document: counts from the bot, PnL from its risk monitor, the exchange's own view from
    the simulator's audit of the demo account (max notional held per market, positions) and open orders."""
    markets: Mapping[str, Mapping[str, Any]] = audit.get("markets", {})
    return {
        "signals": int(counts.get("signals", 0)),
        "orders": {"total": int(counts.get("orders", 0)), **dict(sorted(order_outcomes.items()))},
        "fills": int(counts.get("fills", 0)),
        "round_trips": figures.round_trips,
        "win_rate": figures.win_rate,
        "realized_pnl_usd": str(figures.realized_pnl_total_usd),
        "fees_usd": str(figures.fees_usd),
        "cap_per_market_usd": str(cap_per_market_usd),
        "max_notional_by_market": {coin: str(m["max_position_notional"]) for coin, m in markets.items()},
        "open_orders_at_end": open_orders,
        "positions_at_end": {
            coin: str(m["position"]) for coin, m in markets.items() if _nonzero(m["position"])
        },
        "tick_to_order_us": {
            "p50": _optional_float(tick_to_order_us.get("p50")),
            "p99": _optional_float(tick_to_order_us.get("p99")),
            "count": int(tick_to_order_us.get("count", 0)),
        },
        "duration_s": round(duration_s, 3),
    }


def _optional_float(value: object) -> float | None:
    return None if value is None else float(cast(float, value))


def summary_text(summary: Mapping[str, Any]) -> str:
    latency = summary["tick_to_order_us"]
    win = "n/a" if summary["win_rate"] is None else f"{summary['win_rate']:.0%}"
    peaks = (
        ", ".join(f"{coin} {value}" for coin, value in summary["max_notional_by_market"].items()) or "none"
    )
    positions = ", ".join(f"{coin} {size}" for coin, size in summary["positions_at_end"].items()) or "none"
    return "\n".join(
        [
            f"hip3 demo: {summary['duration_s']:.0f} s against the simulator",
            f"  signals {summary['signals']}, orders {_orders_text(summary['orders'])}, "
            f"fills {summary['fills']}",
            f"  round trips {summary['round_trips']} (win rate {win}), realized PnL "
            f"{summary['realized_pnl_usd']} USD after {summary['fees_usd']} USD fees",
            f"  tick to order p50 {_us(latency['p50'])}, p99 {_us(latency['p99'])} "
            f"({latency['count']} orders)",
            f"  largest position per market (the exchange's ledger; cap "
            f"{summary['cap_per_market_usd']} USD): {peaks}",
            f"  at the end: {summary['open_orders_at_end']} open orders, positions: {positions}",
        ]
    )


def _orders_text(orders: Mapping[str, int]) -> str:
    outcomes = ", ".join(f"{count} {state}" for state, count in orders.items() if state != "total")
    return f"{orders['total']}" + (f" ({outcomes})" if outcomes else "")


def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} µs"


# -- reading the running demo -----------------------------------------------------------------------------


@attrs.define
class Demo:
    """A started demo: the simulator, the bot, and the account it trades."""

    sim: RunningSim
    running: Running
    cfg: Config
    dexes: tuple[str, ...]  # the simulator's dexes (the first one is "")
    address: str
    started_at: float  # trio.current_time() when the bot reported started
    stopped_at: float | None = None

    @property
    def desk(self) -> Desk:
        desk = self.running.desk
        if desk is None:  # demo_config forces trading mode
            raise RuntimeError("the demo bot runs without a trading desk")
        return desk

    def elapsed_s(self) -> float:
        end = trio.current_time() if self.stopped_at is None else self.stopped_at
        return end - self.started_at

    def audit(self) -> dict[str, Any]:
        return self.sim.exchange.audit(self.address)

    def open_orders(self) -> int:
        total = 0
        for dex in self.dexes:
            _status, body = self.sim.exchange.info({"type": "openOrders", "user": self.address, "dex": dex})
            total += len(body) if isinstance(body, list) else 0
        return total

    def counts(self) -> dict[str, int]:
        """Signals, orders and fills as the bot counted them."""
        return self.running.ops.counts()

    def tick_to_order_us(self) -> Mapping[str, Any]:
        latency = self.running.ops.latency
        if latency is None:  # observation mode only; the demo trades
            return {"p50": None, "p99": None, "count": 0}
        return latency.tick_to_order_us.percentiles()

    def dashboard_url(self) -> str | None:
        return self.running.ops.dashboard_url

    def progress(self) -> Progress:
        counts, figures = self.counts(), self.desk.monitor.figures()
        latch = self.desk.hard_stop.latched
        return Progress(
            elapsed_s=self.elapsed_s(),
            connection=self.running.ws.status.value.state.value,
            hard_stop="clear" if latch is None else f"LATCHED ({latch.trigger})",
            signals=counts.get("signals", 0),
            orders=counts.get("orders", 0),
            fills=counts.get("fills", 0),
            round_trips=figures.round_trips,
            realized_pnl_usd=figures.realized_pnl_total_usd,
            open_positions=len(self.desk.tracker.handle.positions),
            dashboard_url=self.dashboard_url(),
        )

    def summary(self) -> dict[str, Any]:
        return build_summary(
            counts=self.counts(),
            order_outcomes=self.running.ops.order_outcomes(),
            figures=self.desk.monitor.figures(),
            cap_per_market_usd=self.cfg.position.max_notional_per_market,
            audit=self.audit(),
            open_orders=self.open_orders(),
            tick_to_order_us=self.tick_to_order_us(),
            duration_s=self.elapsed_s(),
        )


# -- the run ----------------------------------------------------------------------------------------------


@attrs.frozen
class DemoSetup:
    """Everything decided before anything runs."""

    scenario: Scenario
    base_config: Config
    data_dir: Path
    duration_s: float | None
    dashboard: bool
    dashboard_port: int


async def _run_bot(
    cfg: Config,
    environ: Mapping[str, str],
    scope: trio.CancelScope,
    done: trio.Event,
    *,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> None:
    try:
        with scope:
            await run_bot(cfg, environ=environ, task_status=task_status)
    finally:
        done.set()


async def _report_progress(demo: Demo, out: TextIO) -> None:
    """A status line about once a second: rewritten in place on a terminal, a new line every 5 s otherwise."""
    tty = out.isatty()
    interval = STATUS_INTERVAL_S if tty else PLAIN_STATUS_INTERVAL_S
    width = 0
    try:
        while True:
            await trio.sleep(interval)
            line = status_line(demo.progress())
            if tty:
                out.write("\r" + line.ljust(width))
                width = len(line)
            else:
                out.write(line + "\n")
            out.flush()
    finally:
        if tty and width:
            out.write("\n")
            out.flush()


def _bot_environ(key_hex: str) -> dict[str, str]:
    """What the bot reads of the environment: the throwaway key, and the operator's dashboard token (for the
    dashboard's hard-stop button) if one is set. Nothing else: not the operator's own key or account."""
    environ = {KEY_ENV_VAR: key_hex}
    token = os.environ.get(DASHBOARD_TOKEN_ENV)
    if token:
        environ[DASHBOARD_TOKEN_ENV] = token
    return environ


async def _start(
    nursery: trio.Nursery, setup: DemoSetup, bot_scope: trio.CancelScope, bot_done: trio.Event
) -> Demo:
    key_hex, address = throwaway_key()
    sim: RunningSim = await nursery.start(
        partial(run_sim_server, setup.scenario, host=LOOPBACK, port=0, fund=[(address, FUNDING_USDC)])
    )
    cfg = demo_config(
        setup.base_config,
        sim=sim,
        is_mainnet=setup.scenario.is_mainnet,
        address=address,
        data_dir=setup.data_dir,
        dashboard=setup.dashboard,
        dashboard_port=setup.dashboard_port,
    )
    running: Running = await nursery.start(_run_bot, cfg, _bot_environ(key_hex), bot_scope, bot_done)
    dexes = tuple(dex.name for dex in setup.scenario.dexes)
    return Demo(sim, running, cfg, dexes, address, started_at=trio.current_time())


async def _stop(demo: Demo, bot_scope: trio.CancelScope, bot_done: trio.Event) -> None:
    """The bot's own shutdown sequence (stop entries, cancel resting, flatten), then the bot stops."""
    await graceful_shutdown(demo.desk)
    demo.stopped_at = trio.current_time()
    bot_scope.cancel()
    await bot_done.wait()


async def run_demo(
    setup: DemoSetup,
    *,
    out: TextIO | None = None,
    task_status: trio.TaskStatus[Demo] = trio.TASK_STATUS_IGNORED,
) -> dict[str, Any] | None:
    """Run the simulator and the bot until the duration ends or a signal comes; return the summary (None if
    the demo was abandoned before the bot started)."""
    stream = out or sys.stdout
    stop, bot_scope, bot_done = trio.Event(), trio.CancelScope(), trio.Event()
    started: list[Demo] = []  # empty if a second signal abandoned the demo while it started
    async with trio.open_nursery() as nursery:
        # The first SIGINT/SIGTERM asks for the graceful stop; the next one abandons it.
        abandon = nursery.cancel_scope
        await nursery.start(
            partial(wait_for_signals, lambda _signum: stop.set(), on_second=lambda _signum: abandon.cancel())
        )
        demo = await _start(nursery, setup, bot_scope, bot_done)
        started.append(demo)
        task_status.started(demo)
        print(_banner(demo, setup), file=stream, flush=True)
        nursery.start_soon(_report_progress, demo, stream)
        with trio.move_on_after(math.inf if setup.duration_s is None else setup.duration_s):
            await stop.wait()
        await _stop(demo, bot_scope, bot_done)
        nursery.cancel_scope.cancel()  # the simulator, the status line and the signal watcher
    if not started:
        return None
    demo = started[0]
    if demo.stopped_at is None:
        demo.stopped_at = trio.current_time()
    return demo.summary()


def _banner(demo: Demo, setup: DemoSetup) -> str:
    markets = ", ".join(entry.coin for entry in demo.cfg.markets.allowlist)
    until = "Ctrl-C" if setup.duration_s is None else f"{setup.duration_s:g} s (or Ctrl-C)"
    return (
        f"hip3 demo: simulator {demo.sim.http_url} (seed {setup.scenario.seed}), account {demo.address} "
        f"funded with {FUNDING_USDC} USDC\n"
        f"  trading {markets}; cap {demo.cfg.position.max_notional_per_market} USD per market; "
        f"data in {setup.data_dir}; running until {until}"
    )


# -- the command ------------------------------------------------------------------------------------------


def _load_base_config(path: Path) -> Config:
    """The demo's config as written; HIP3_ACCOUNT_ADDRESS is ignored (the demo trades its own account)."""
    return load_config(path, env={})


@contextmanager
def _data_dir(chosen: Path | None) -> Iterator[Path]:
    if chosen is not None:
        chosen.mkdir(parents=True, exist_ok=True)
        yield chosen
        return
    with tempfile.TemporaryDirectory(prefix="hip3-demo-") as fresh:
        yield Path(fresh)


def _configure_logging(cfg: Config) -> None:
    """As `hip3 run` does, from [telemetry]; sim.toml logs warnings only, to stderr, off the status line."""
    configure_logging(level=cfg.telemetry.log_level, fmt=cfg.telemetry.log_format)


def _write_summary(summary: Mapping[str, Any], path: Path | None) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def _prepare(options: DemoOptions) -> tuple[Scenario, Config] | str:
    try:
        return load_demo_scenario(options), _load_base_config(options.config)
    except (ScenarioError, ConfigError) as exc:
        return str(exc)


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def _explain(error: BaseException, setup: DemoSetup) -> str:
    if isinstance(error, OSError) and error.errno == errno.EADDRINUSE and setup.dashboard:
        return f"{error} (is port {setup.dashboard_port} taken? try --dashboard-port 0 or --no-dashboard)"
    return str(error)


def _run_trio(setup: DemoSetup) -> dict[str, Any] | str | None:
    """The summary; or what stopped the demo, in words; or None if it was abandoned before it started."""
    outcome: dict[str, Any] | str | None = None
    try:
        outcome = trio.run(run_demo, setup)
    except* (SigningKeyError, PreflightError, OSError) as failed:
        outcome = "; ".join(_explain(leaf, setup) for leaf in _leaves(failed))
    return outcome


def run(args: argparse.Namespace) -> int:
    options = options_from(args)
    prepared = _prepare(options)
    if isinstance(prepared, str):
        print(f"hip3 demo: {prepared}", file=sys.stderr)
        return EXIT_INVALID
    scenario, base = prepared
    _configure_logging(base)
    with _data_dir(options.data_dir) as data_dir:
        setup = DemoSetup(
            scenario, base, data_dir, options.duration_s, options.dashboard, options.dashboard_port
        )
        outcome = _run_trio(setup)
    if isinstance(outcome, str):
        print(f"hip3 demo: {outcome}", file=sys.stderr)
        return EXIT_FAILED
    if outcome is None:
        print("hip3 demo: stopped before the bot started", file=sys.stderr)
        return EXIT_FAILED
    print(summary_text(outcome), flush=True)
    _write_summary(outcome, options.summary_json)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """`python -m hip3.demo`, the same as `hip3 demo`."""
    parser = argparse.ArgumentParser(
        prog="hip3 demo", description=__doc__.splitlines()[0] if __doc__ else None
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
