"""Market-data frames parsed per second, on frames the local exchange produces for 42 markets.

The frames come from the simulator itself: a builder dex with 42 markets, its market process run for
`SIM_RUN_MS` of virtual time, and one WebSocket session subscribed to bbo and activeAssetCtx of every market;
every frame that session sends is kept, so the mix of bbo and asset-context frames is the simulator's.
`parse_frame` then parses N of them on the real clock (`time.perf_counter`).

Figures: frames_parsed_per_s over the recorded mix, bbo_us and ctx_us the mean time of one frame of each kind;
frames_dispatched_per_s: parsed and routed by `WsConnection` to a consumer channel that another task drains;
resubscribe_42_markets_s: from a new connection (after a dropped one) to LIVE with bbo and activeAssetCtx of
42 markets acknowledged, against the in-memory simulator and over a real loopback socket (the predecessor
took about 9.6 s to resubscribe 42 markets).

Prints one JSON object.    .venv/bin/python benchmarks/bench_feed.py [--n 200000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from decimal import Decimal

import structlog
import trio

from hip3.net.ws import ConnectionState, Connector, WsConnection, WsSettings, url_connector
from hip3.protocol.messages import AssetCtx, Bbo, Malformed, parse_frame
from hip3.sim.driver import apply_updates
from hip3.sim.engine import SimExchange
from hip3.sim.harness import MemorySim, run_memory_sim
from hip3.sim.market_process import MarketProcess
from hip3.sim.scenario import DexDef, MarketDef, Scenario
from hip3.sim.server import RunningSim, run_sim_server
from hip3.sim.ws_session import WsSession

N = 200_000
MARKETS = 42
SIM_RUN_MS = 30_000
STEP_MS = 50
START_MS = 1_767_225_600_000


def scenario(markets: int = MARKETS) -> Scenario:
    """A first dex with one market and a builder dex with `markets` markets at spread-out prices."""
    builder_markets = tuple(
        MarketDef(name=f"M{i:02d}", sz_decimals=i % 4, max_leverage=10, start_price=Decimal(7 + 37 * i))
        for i in range(markets)
    )
    first = MarketDef(name="BTC", sz_decimals=5, max_leverage=40, start_price=Decimal(90_000))
    return Scenario(dexes=(DexDef(name="", markets=(first,)), DexDef(name="xyz", markets=builder_markets)))


def record_frames(markets: int = MARKETS) -> list[str]:
    """The text frames (bbo and activeAssetCtx) one subscribed session receives from the simulator."""
    clock = [START_MS]
    sim_scenario = scenario(markets)
    exchange = SimExchange(sim_scenario, wall_ms=lambda: clock[0])
    process = MarketProcess(sim_scenario)
    apply_updates(exchange, process.start())
    session = WsSession(exchange)
    session.open()
    builder_coins = [coin for coin in process.coins if coin.startswith("xyz:")]
    for coin, kind in itertools.product(builder_coins, ("bbo", "activeAssetCtx")):
        subscription = {"type": kind, "coin": coin}
        session.on_text(json.dumps({"method": "subscribe", "subscription": subscription}))
    _drain(session)  # greeting and acks
    frames: list[str] = []
    for now_ms in range(STEP_MS, SIM_RUN_MS + 1, STEP_MS):
        clock[0] = START_MS + now_ms
        apply_updates(exchange, process.advance(now_ms))
        exchange.on_time()
        frames += _drain(session)
    return frames


def _drain(session: WsSession) -> list[str]:
    frames = []
    while True:
        try:
            frames.append(session.outbox.receive_nowait())
        except trio.WouldBlock:
            return frames


def _time_parse(frames: list[str], n: int) -> float:
    """Seconds to parse n frames, cycling through `frames`."""
    batch = list(itertools.islice(itertools.cycle(frames), n))
    start = time.perf_counter()
    for text in batch:
        parse_frame(text)
    return time.perf_counter() - start


def measure_parse(n: int = N, frames: list[str] | None = None) -> dict[str, float]:
    """frames_parsed_per_s over the simulator's mix, and the mean µs per bbo and per activeAssetCtx frame."""
    frames = record_frames() if frames is None else frames
    by_type: dict[type, list[str]] = {Bbo: [], AssetCtx: []}
    for text in frames:
        parsed = parse_frame(text)
        if isinstance(parsed, Malformed):
            raise SystemExit(f"the simulator sent a frame the parser refuses: {parsed} {text[:200]}")
        by_type.setdefault(type(parsed), []).append(text)
    mixed_s = _time_parse(frames, n)
    return {
        "frames_parsed_per_s": round(n / mixed_s),
        "bbo_us": round(_time_parse(by_type[Bbo], n) / n * 1e6, 3),
        "ctx_us": round(_time_parse(by_type[AssetCtx], n) / n * 1e6, 3),
        "frames": n,
        "markets": MARKETS,
        "recorded_bbo_frames": len(by_type[Bbo]),
        "recorded_ctx_frames": len(by_type[AssetCtx]),
    }


async def _dispatch_all(frames: list[str], n: int) -> float:
    connection = WsConnection(_never_connect)
    applied = 0

    def apply(_frame: object, _received_at: float) -> None:  # where the market feed's `apply` sits
        nonlocal applied
        applied += 1

    connection.on_frames(apply, Bbo, AssetCtx)
    started = time.perf_counter()
    for text in itertools.islice(itertools.cycle(frames), n):
        await connection._dispatch(parse_frame(text), trio.current_time())  # the reader's path, no socket
    elapsed = time.perf_counter() - started
    assert applied == n, (applied, n)
    return elapsed


async def _never_connect(_nursery: trio.Nursery) -> object:
    raise OSError("the dispatch benchmark does not connect")


def measure_dispatch(n: int = N, frames: list[str] | None = None) -> float:
    """Frames parsed and handed to the market feed's handler per second."""
    frames = frames if frames is not None else record_frames()
    return n / trio.run(_dispatch_all, frames, n)


def _subscriptions(coins: list[str]) -> list[dict[str, str]]:
    builder = [coin for coin in coins if coin.startswith("xyz:")]
    return [{"type": kind, "coin": coin} for coin in builder for kind in ("bbo", "activeAssetCtx")]


async def _time_resubscribe(connector: Connector, drop: object, coins: list[str]) -> float:
    connection = WsConnection(connector, WsSettings(reconnect_base_s=0.001, reconnect_jitter=0))
    for subscription in _subscriptions(coins):
        connection.subscribe(subscription)
    async with trio.open_nursery() as nursery:
        await nursery.start(connection.run)
        await connection.wait_live()
        drop()  # type: ignore[operator]
        await connection.status.wait_for(lambda s: s.epoch == 2 and s.state is ConnectionState.CONNECTING)
        started = time.perf_counter()
        await connection.wait_live(after_epoch=1)
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    return elapsed


async def _resubscribe_in_memory(markets: int) -> float:
    async with trio.open_nursery() as nursery:
        sim: MemorySim = await nursery.start(run_memory_sim, scenario(markets))
        elapsed = await _time_resubscribe(
            sim.ws_server.connect, sim.faults.drop_websockets, sim.exchange.coins
        )
        nursery.cancel_scope.cancel()
    return elapsed


async def _resubscribe_loopback(markets: int) -> float:
    async with trio.open_nursery() as nursery:
        sim: RunningSim = await nursery.start(
            lambda task_status: run_sim_server(scenario(markets), port=0, task_status=task_status)
        )
        connector = url_connector(sim.ws_url)
        elapsed = await _time_resubscribe(connector, sim.faults.drop_websockets, sim.exchange.coins)
        nursery.cancel_scope.cancel()
    return elapsed


def main() -> None:
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout carries the JSON
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=N, help="frames to parse")
    n = parser.parse_args().n
    frames = record_frames()
    figures: dict[str, object] = dict(measure_parse(n, frames))
    figures["frames_dispatched_per_s"] = round(measure_dispatch(n, frames))
    figures["resubscribe_42_markets_s"] = {
        "in_memory": round(trio.run(_resubscribe_in_memory, MARKETS), 4),
        "loopback": round(trio.run(_resubscribe_loopback, MARKETS), 4),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
