"""Observation mode end to end against the in-memory simulator under MockClock.

A scripted oracle jump on a quiet market gives exactly one buy signal at the instant of the oracle update,
with followups at +1/+3/+5 s; a market whose book sits structurally 40 bps below its oracle gives none
while the baseline correction is on (and does without it, so the test can fail); the raw frames are
recorded for replay; and nothing is ever sent to /exchange.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from hip3.app import Running, Transports, run_bot
from hip3.config import parse_config
from hip3.core.clock import trio_wall_clock
from hip3.persist.jsonl import run_inline
from hip3.persist.market_recording import read_recording
from hip3.sim.harness import WALL_START_MS, MemorySim, run_memory_sim
from hip3.sim.scenario_file import parse_scenario

SCENARIO = """
seed = 5
[process_defaults]
volatility_bps = 0.0
jump_probability = 0.0
quote_lag_ms = 1500
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
[[dexes.markets]]
name = "WIDE"
sz_decimals = 2
max_leverage = 10
start_price = 50
process = { quote_offset_bps = -40.0 }
"""


def config_text(data_dir: Path, *, baseline: bool) -> str:
    return f"""
mode = "observation"
[network]
name = "local"
api_url = "http://sim.local"
ws_url = "ws://sim.local/ws"
[markets]
dexes = ["xyz"]
[risk]
max_bbo_age_ms = 0
[detector]
baseline_tracking = {"true" if baseline else "false"}
baseline_min_samples = 5
consecutive_moves_filter = false
oracle_direction_filter = false  # the baseline alone must keep the wide market quiet
[persistence]
data_dir = "{data_dir}"
buffer_size = 10
flush_interval_ms = 500
"""


class NoExchangeTransport(httpx.AsyncBaseTransport):
    """The simulator's HTTP, refusing /exchange so the test would see any attempt."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.exchange_attempts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/exchange":
            self.exchange_attempts += 1
            return httpx.Response(403, text="observation mode must never send")
        return await self.inner.handle_async_request(request)


async def observe(
    nursery: trio.Nursery, tmp_path: Path, *, baseline: bool
) -> tuple[MemorySim, Running, NoExchangeTransport, list[Any]]:
    sim: MemorySim = await nursery.start(run_memory_sim, parse_scenario(SCENARIO, source="test"))
    socket_actions: list[Any] = []
    real_exchange = sim.exchange.exchange

    def exchange_spy(body: object) -> tuple[int, object]:
        socket_actions.append(body)
        return real_exchange(body)

    sim.exchange.exchange = exchange_spy  # type: ignore[method-assign]
    http = NoExchangeTransport(sim.http_transport)
    cfg = parse_config(config_text(tmp_path, baseline=baseline), source="test")
    running: Running = await nursery.start(
        lambda task_status: run_bot(
            cfg,
            transports=Transports(http=http, ws_connector=sim.ws_server.connect),
            wall_ms=trio_wall_clock(WALL_START_MS),
            disk_writes=run_inline,
            task_status=task_status,
        )
    )
    return sim, running, http, socket_actions


def jsonl(directory: Path, prefix: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(directory.glob(f"{prefix}-*.jsonl"))
        for line in path.read_text().splitlines()
    ]


@pytest.mark.deadline(300)
async def test_a_scripted_jump_gives_one_signal_at_the_oracle_update_and_nothing_is_sent(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with trio.open_nursery() as nursery:
        sim, running, http, socket_actions = await observe(nursery, tmp_path, baseline=True)
        start = trio.current_time()
        await trio.sleep(16.5)  # five oracle updates: every market has learned its baseline
        stale_ask = sim.exchange.info({"type": "l2Book", "coin": "xyz:TSLA"})[1]["levels"][1][0]["px"]  # type: ignore[index]
        sim.process.force_jump("xyz:TSLA", 60)  # applied at the next oracle update, 18 s after start
        await trio.sleep(8)
        jumped_oracle = sim.process.oracle("xyz:TSLA")
        nursery.cancel_scope.cancel()

    signals = jsonl(tmp_path / "signals", "signals")
    assert [(s["coin"], s["side"]) for s in signals] == [("xyz:TSLA", "buy")]
    signal = signals[0]
    expected_edge = float((jumped_oracle - type(jumped_oracle)(stale_ask)) / jumped_oracle) * 10_000
    assert signal["raw_edge_bps"] == pytest.approx(expected_edge)
    assert signal["detected_at"] - start == pytest.approx(18.0)  # the same instant as the oracle's frame
    followups = jsonl(tmp_path / "signals", "followups")
    assert [(f["signal_id"], f["offset_ms"]) for f in followups] == [
        (signal["id"], 1000), (signal["id"], 3000), (signal["id"], 5000)
    ]  # fmt: skip
    assert [f["closed"] for f in followups] == [
        False,
        True,
        True,
    ]  # stale during the 1.5 s lag; caught up by 2.5 s
    recordings = sorted((tmp_path / "market").glob("market-*.jsonl.gz"))
    frames = [frame for path in recordings for frame in read_recording(path)]
    kinds = [(json.loads(frame.text)["channel"], json.loads(frame.text)["data"]["coin"]) for frame in frames]
    assert kinds.count(("activeAssetCtx", "xyz:TSLA")) >= 8  # one per oracle update, every 3 s
    assert kinds.count(("activeAssetCtx", "xyz:WIDE")) >= 8
    assert kinds.count(("bbo", "xyz:TSLA")) >= 3  # the makers walking to the new oracle
    assert all(kind in ("activeAssetCtx", "bbo") for kind, _ in kinds)
    with gzip.open(recordings[0]) as plain:  # a plain gzip reader opens it too
        assert plain.read()
    assert http.exchange_attempts == 0
    assert [body for body in socket_actions] == []
    assert running.feed.states["xyz:WIDE"].baseline_ewma_bps == pytest.approx(40.0, abs=1.0)


@pytest.mark.deadline(300)
async def test_the_structurally_wide_market_signals_without_the_baseline_correction(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with trio.open_nursery() as nursery:
        await observe(nursery, tmp_path, baseline=False)
        await trio.sleep(16.5)
        nursery.cancel_scope.cancel()
    coins = {s["coin"] for s in jsonl(tmp_path / "signals", "signals")}
    assert coins == {"xyz:WIDE"}  # its 36 bps "edge" is only the book's usual place below the oracle
