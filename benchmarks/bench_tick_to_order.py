"""Tick-to-order of the real bot (run_bot, trading mode) on the real clock, and its startup time.

tick_to_order_us: in process, against the in-memory simulator (memory streams, no MockClock), 10,000 events.
Each event moves xyz:TSLA's oracle under a wide book (no signal), then sends the book frame that creates the
dislocation: an ask 50 bps under the oracle. The detector fires on that frame and the entry is signed and
handed to the socket. The figure is the bot's own `OrderLatency` measurement (the feed's receipt of the
frame → the signed order handed to the transport), every sample collected through a wrapper on its
listener. The simulator rejects each order (`reject_next_orders`) so no position opens and the next event
can be entered at once.

Benchmark-only settings: baseline tracking and the filters off; the mark-mid divergence gate off (the
simulator's mark follows the oracle frame, which comes before the dislocating book); reject alarms off; and
the bot's own ceilings lifted: entries (`ACTIONS_PER_MINUTE`, 600 a minute) and WebSocket messages
(`websocket.messages_per_minute`, the exchange's 2,000 a minute, which 10,000 events in seconds would
exhaust: the bot would rightly wait for its budget and the benchmark would measure that).

sim_frame_to_order_us: the same events against the loopback simulator (Hypercorn, real sockets), measured
by the simulator: the dislocating bbo frame sent → the order post received.

startup_to_ready_s: loopback simulator with 42 markets; from the call to run_bot to the WebSocket LIVE,
every book seeded and the desk READY.

Prints one JSON object.    .venv/bin/python benchmarks/bench_tick_to_order.py [--events 10000]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import structlog
import trio

import hip3.app_trading
from hip3.app import Running, Transports, run_bot
from hip3.config import Config, parse_config
from hip3.core.clock import trio_wall_clock
from hip3.net.ws import ConnectionState
from hip3.persist.jsonl import run_inline
from hip3.protocol.signing import SigningKey
from hip3.sim.harness import WALL_START_MS, MemorySim, run_memory_sim
from hip3.sim.scenario_file import parse_scenario
from hip3.sim.server import RunningSim, run_sim_server

KEY_HEX = "0x0123456789012345678901234567890123456789012345678901234567890123"  # the SDK's public test key
KEY = SigningKey.from_hex(KEY_HEX)
COIN = "xyz:TSLA"
EVENTS = 10_000
SIM_EVENTS = 2_000
TIME_LIMIT_S = 60.0
EVENT_TIMEOUT_S = 0.2  # an event the detector did not take costs this much
READY_LIMIT_S = 60.0  # from the call to run_bot to READY: past it the benchmark fails rather than hangs
STARTUP_MARKETS = 42
REJECT_TEXT = "Order could not immediately match against any resting orders. asset=0"


def scenario_text(markets: int = 1) -> str:
    extra = "".join(
        f"""
[[dexes.markets]]
name = "M{i:02d}"
sz_decimals = 2
max_leverage = 10
start_price = {50 + i}
"""
        for i in range(markets - 1)
    )
    return f"""
seed = 7
oracle_interval_ms = 3600000
[process_defaults]
volatility_bps = 0.0
jump_probability = 0.0
quote_lag_ms = 1000
catch_up_ms = 1000
spread_bps = 8.0
[[dexes]]
name = ""
[[dexes.markets]]
name = "BTC"
sz_decimals = 5
max_leverage = 40
start_price = 95000
[[dexes]]
name = "xyz"
full_name = "XYZ"
[[dexes.markets]]
name = "TSLA"
sz_decimals = 3
max_leverage = 10
start_price = 430.55
{extra}"""


def config_text(data_dir: Path, coins: list[str], api_url: str, ws_url: str) -> str:
    allowlist = ", ".join(f'{{ coin = "{coin}" }}' for coin in coins)
    return f"""
mode = "trading"
[network]
name = "local"
api_url = "{api_url}"
ws_url = "{ws_url}"
[account]
account_address = "{KEY.address}"
[markets]
dexes = ["xyz"]
allowlist = [{allowlist}]
[position]
max_notional_per_market = 1000000
max_total_notional = 1000000
max_concurrent_positions = 100
[risk_monitor]
max_loss_usd = 1000000
max_alarming_rejects = 0
max_consecutive_failures = 0
[risk]
max_bbo_age_ms = 0
max_mark_mid_divergence_bps = 0
[detector]
baseline_tracking = false
consecutive_moves_filter = false
oracle_direction_filter = false
max_notional = 45
[persistence]
data_dir = "{data_dir}"
record_market_data = false
[telemetry]
log_level = "error"
"""


def bench_config(data_dir: Path, coins: list[str], api_url: str, ws_url: str) -> Config:
    cfg = parse_config(config_text(data_dir, coins, api_url, ws_url), source="bench")
    with attrs.validators.disabled():  # past the config's own range: benchmark only
        unlimited = attrs.evolve(cfg.websocket, messages_per_minute=10**9)
    return attrs.evolve(cfg, websocket=unlimited)


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(fraction: float) -> float:
        return round(ordered[max(1, math.ceil(fraction * len(ordered))) - 1], 1)

    return {"p50": rank(0.5), "p99": rank(0.99), "max": round(ordered[-1], 1)}


def _collect(running: Running, samples: list[float], arrived: list[trio.Event]) -> None:
    latency = running.ops.latency
    if latency is None:
        raise RuntimeError("the bot runs without OrderLatency (not in trading mode?)")
    previous = latency._on_tick_to_order_us

    def listener(micros: float) -> None:
        samples.append(micros)
        arrived[0].set()
        if previous is not None:
            previous(micros)

    latency._on_tick_to_order_us = listener


async def _start_ready_bot(nursery: trio.Nursery, cfg: Config, markets: int, **run_bot_args: Any) -> Running:
    """Start the bot and wait until it is READY on `markets` seeded books, within READY_LIMIT_S: a bot that
    never gets there (its WebSocket refused, say) fails the benchmark instead of hanging it."""
    with trio.fail_after(READY_LIMIT_S):
        running: Running = await nursery.start(
            lambda task_status: run_bot(
                cfg,
                disk_writes=run_inline,
                environ={"HIP3_TRADING_KEY": KEY_HEX},
                task_status=task_status,
                **run_bot_args,
            )
        )
        await _ready(running, markets)
    return running


async def _ready(running: Running, markets: int) -> None:
    while True:
        states = running.feed.states
        seeded = len(states) >= markets and all(s.bbo_received_at is not None for s in states.values())
        live = running.ws.status.value.state is ConnectionState.LIVE
        desk_ready = running.desk is None or running.desk.readiness.not_ready() is None
        if live and seeded and desk_ready:
            return
        await trio.sleep(0.001)


def _oracle(i: int) -> Decimal:
    return Decimal("430.00") if i % 2 == 0 else Decimal("431.00")


def _move_oracle(sim: MemorySim | RunningSim, i: int) -> None:
    """A new oracle under a book wide enough around the old and the new one that neither frame signals (the
    detector enters once per oracle update and side, so each event needs a fresh one)."""
    low, high = sorted((_oracle(i - 1), _oracle(i)))
    bid, ask = (
        (low * Decimal("0.99")).quantize(Decimal("0.01")),
        (high * Decimal("1.01")).quantize(Decimal("0.01")),
    )
    sim.exchange.set_maker_quotes(COIN, [(bid, Decimal(10))], [(ask, Decimal(10))])
    sim.exchange.set_oracle(COIN, _oracle(i))


def _dislocate(sim: MemorySim | RunningSim, i: int) -> None:
    """The book frame that creates the dislocation: an ask 50 bps under the oracle. The order it draws is
    rejected, so no position opens and the next event can be entered at once."""
    oracle = _oracle(i)
    ask = (oracle * Decimal("0.995")).quantize(Decimal("0.01"))
    bid = (oracle * Decimal("0.990")).quantize(Decimal("0.01"))
    sim.exchange.reject_next_orders(1, REJECT_TEXT)
    sim.exchange.set_maker_quotes(COIN, [(bid, Decimal(10))], [(ask, Decimal(10))])


async def _dislocate_each(
    sim: MemorySim | RunningSim,
    arrived: list[trio.Event],
    events: int,
    time_limit_s: float,
    *,
    pause_s: float,
    before_each: Callable[[], None] = lambda: None,
) -> tuple[int, int, float]:
    """Up to `events` times within `time_limit_s`: move the oracle, wait `pause_s` for the bot to take it in,
    dislocate, and wait up to EVENT_TIMEOUT_S for `arrived[0]`; return the events done, those missed, and
    the seconds it took."""
    await trio.sleep(0.5)
    started = time.perf_counter()
    done = missed = 0
    for i in range(1, events + 1):
        if time.perf_counter() - started > time_limit_s:
            break
        _move_oracle(sim, i)
        await trio.sleep(pause_s)
        arrived[0] = trio.Event()
        before_each()
        _dislocate(sim, i)
        with trio.move_on_after(EVENT_TIMEOUT_S):
            await arrived[0].wait()
        if not arrived[0].is_set():
            missed += 1
        done += 1
    return done, missed, time.perf_counter() - started


async def measure_tick_to_order(events: int, time_limit_s: float) -> dict[str, Any]:
    hip3.app_trading.ACTIONS_PER_MINUTE = 10**9  # type: ignore[misc]  # benchmark: lift the entry ceiling
    samples: list[float] = []
    arrived = [trio.Event()]
    with tempfile.TemporaryDirectory(prefix="hip3-bench-") as data_dir:
        async with trio.open_nursery() as nursery:
            sim: MemorySim = await nursery.start(
                lambda task_status: run_memory_sim(
                    parse_scenario(scenario_text(), source="bench"),
                    fund=[(KEY.address, Decimal(1_000_000))],
                    task_status=task_status,
                )
            )
            cfg = bench_config(Path(data_dir), [COIN], "http://sim.local", "ws://sim.local/ws")
            running = await _start_ready_bot(
                nursery,
                cfg,
                1,
                transports=Transports(http=sim.http_transport, ws_connector=sim.ws_server.connect),
                wall_ms=trio_wall_clock(WALL_START_MS),
            )
            _collect(running, samples, arrived)
            # 0.5 ms: the new oracle (and the last reject's answer) taken in before the dislocation
            done, missed, elapsed = await _dislocate_each(sim, arrived, events, time_limit_s, pause_s=0.0005)
            nursery.cancel_scope.cancel()
    return {
        **percentiles(samples),
        "events": done,
        "orders_measured": len(samples),
        "missed": missed,
        "elapsed_s": round(elapsed, 2),
    }


def _is_order_post(message: Any) -> bool:
    request = message.get("request") if isinstance(message, dict) else None
    if not isinstance(request, dict) or message.get("method") != "post" or request.get("type") != "action":
        return False
    return bool(request.get("payload", {}).get("action", {}).get("type") == "order")


def _json(text: str) -> Any:
    """A frame's JSON, or None for a frame that is not JSON (the simulator's greeting is plain text)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


async def measure_sim_frame_to_order(events: int, time_limit_s: float) -> dict[str, Any]:
    """The simulator's view on loopback: the bbo frame of the dislocation sent → the order action received."""
    hip3.app_trading.ACTIONS_PER_MINUTE = 10**9  # type: ignore[misc]
    samples: list[float] = []
    arrived = [trio.Event()]
    last_bbo_sent: list[float | None] = [None]

    def on_sent(text: str, now: float) -> None:
        message = _json(text)
        if (
            isinstance(message, dict)
            and message.get("channel") == "bbo"
            and message["data"].get("coin") == COIN
        ):
            last_bbo_sent[0] = now

    def on_received(text: str, now: float) -> None:
        if last_bbo_sent[0] is not None and _is_order_post(_json(text)):
            samples.append((now - last_bbo_sent[0]) * 1e6)
            last_bbo_sent[0] = None
            arrived[0].set()

    def forget_bbo() -> None:
        last_bbo_sent[0] = None

    with tempfile.TemporaryDirectory(prefix="hip3-bench-") as data_dir:
        async with trio.open_nursery() as nursery:
            sim: RunningSim = await nursery.start(
                lambda task_status: run_sim_server(
                    parse_scenario(scenario_text(), source="bench"),
                    port=0,
                    fund=[(KEY.address, Decimal(1_000_000))],
                    task_status=task_status,
                )
            )
            sim.timing.sent.append(on_sent)
            sim.timing.received.append(on_received)
            cfg = bench_config(Path(data_dir), [COIN], sim.http_url, sim.ws_url)
            await _start_ready_bot(nursery, cfg, 1)
            done, missed, _ = await _dislocate_each(
                sim, arrived, events, time_limit_s, pause_s=0.001, before_each=forget_bbo
            )
            nursery.cancel_scope.cancel()
    if sim.timing.errors:  # the figures would be wrong: say so rather than print them
        raise RuntimeError(
            f"{sim.timing.errors} frame timing listener errors, first: {sim.timing.first_error!r}"
        )
    figures = percentiles(samples)
    return {
        "p50": figures["p50"],
        "p99": figures["p99"],
        "max": figures["max"],
        "events": done,
        "missed": missed,
    }


async def measure_startup(markets: int) -> float:
    scenario = parse_scenario(scenario_text(markets), source="bench")
    with tempfile.TemporaryDirectory(prefix="hip3-bench-") as data_dir:
        async with trio.open_nursery() as nursery:
            sim: RunningSim = await nursery.start(
                lambda task_status: run_sim_server(
                    scenario, port=0, fund=[(KEY.address, Decimal(10_000))], task_status=task_status
                )
            )
            coins = [c for c in sim.exchange.coins if c.startswith("xyz:")]
            cfg = bench_config(Path(data_dir), coins, sim.http_url, sim.ws_url)
            begun = trio.current_time()
            await _start_ready_bot(nursery, cfg, len(coins))
            elapsed = trio.current_time() - begun
            nursery.cancel_scope.cancel()
    return elapsed


def main() -> None:
    logging.disable(logging.CRITICAL)
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
    )
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--sim-events", type=int, default=SIM_EVENTS)
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT_S)
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "tick_to_order_us": trio.run(measure_tick_to_order, args.events, args.time_limit)
    }
    figures["sim_frame_to_order_us"] = trio.run(
        measure_sim_frame_to_order, args.sim_events, args.time_limit / 2
    )
    figures["startup_to_ready_s"] = round(trio.run(measure_startup, STARTUP_MARKETS), 3)
    figures["startup_markets"] = STARTUP_MARKETS
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
