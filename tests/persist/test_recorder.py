"""SignalRecorder: the signal at once, followups at exactly +1/+3/+5 s with the state then, shutdown."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import trio
import trio.testing

from hip3.core.clock import trio_wall_clock
from hip3.core.market import MarketKey, MarketSpec
from hip3.core.order import Side
from hip3.market.state import MarketState
from hip3.persist.jsonl import DailyJsonl, run_inline
from hip3.persist.recorder import SignalRecorder, followup_prices

MARCH_1_MS = int(dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp() * 1000)
START_MS = MARCH_1_MS + 3_600_000
TSLA = "xyz:TSLA"


@attrs.frozen
class FakeSignal:
    id: str
    coin: str
    side: Side
    detected_at: float

    def to_record(self) -> dict[str, Any]:
        return {"id": self.id, "coin": self.coin, "side": self.side.value, "net_edge_bps": 42.0}


def market(bid: str | None = None, ask: str | None = None, oracle: str | None = None) -> MarketState:
    spec = MarketSpec(name=TSLA, key=MarketKey("xyz", 1, 0), sz_decimals=2, max_leverage=10)
    state = MarketState(coin=TSLA, spec=spec)
    set_prices(state, bid=bid, ask=ask, oracle=oracle)
    return state


def set_prices(state: MarketState, **prices: str | None) -> None:
    for name, value in prices.items():
        setattr(state, f"{name}_px", None if value is None else Decimal(value))


def lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


@attrs.define
class Setup:
    recorder: SignalRecorder
    signals: Path
    followups: Path


@asynccontextmanager
async def running(tmp_path: Path, states: dict[str, MarketState], **options: Any) -> AsyncIterator[Setup]:
    wall_ms = trio_wall_clock(START_MS)
    signals = DailyJsonl(tmp_path, "signals", wall_ms=wall_ms, buffer_size=1, run_blocking=run_inline)
    followups = DailyJsonl(tmp_path, "followups", wall_ms=wall_ms, buffer_size=1, run_blocking=run_inline)
    recorder = SignalRecorder(signals, followups, states, wall_ms=wall_ms, **options)
    async with trio.open_nursery() as nursery:
        for task in (signals.run, followups.run, recorder.run):
            await nursery.start(task)
        yield Setup(recorder, signals.path_for("2026-03-01"), followups.path_for("2026-03-01"))
        nursery.cancel_scope.cancel()


async def test_followups_at_exactly_1_3_5_s_with_the_state_then(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    state = market(bid="98", ask="99", oracle="100")  # a buy: the ask sits 100 bps under the oracle
    async with running(tmp_path, {TSLA: state}) as setup:
        start = trio.current_time()
        setup.recorder.on_signal(FakeSignal("s1", TSLA, Side.BUY, detected_at=start))
        await trio.sleep_until(start + 0.5)
        set_prices(state, ask="99.5")  # still lagging: 50 bps
        await trio.sleep_until(start + 2)
        set_prices(state, ask="100.2")  # caught up and beyond
        await trio.sleep_until(start + 4)
        set_prices(state, oracle="101", ask="100.5")  # the oracle moved away again
        await trio.sleep_until(start + 6)
        signal_lines, followup_lines = lines(setup.signals), lines(setup.followups)
    assert signal_lines == [
        {"id": "s1", "coin": TSLA, "side": "B", "net_edge_bps": 42.0, "recorded_wall_ms": START_MS}
    ]
    expected = [
        (1000, "99.5", "100", 50.0, False),
        (3000, "100.2", "100", pytest.approx(-20.0), True),
        (5000, "100.5", "101", pytest.approx(0.5 / 101 * 10_000), False),
    ]
    assert [
        (f["offset_ms"], f["taken_px"], f["oracle_px"], f["edge_bps"], f["closed"]) for f in followup_lines
    ] == expected
    assert [(f["wall_ms"], f["lag_ms"]) for f in followup_lines] == [
        (START_MS + 1000, 0.0),
        (START_MS + 3000, 0.0),
        (START_MS + 5000, 0.0),
    ]
    assert all(f["signal_id"] == "s1" and f["coin"] == TSLA and f["side"] == "buy" for f in followup_lines)


async def test_a_sell_takes_the_bid_and_closes_when_the_bid_reaches_the_oracle(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    state = market(bid="100.3", ask="101", oracle="100")
    async with running(tmp_path, {TSLA: state}, offsets_s=(1.0, 2.0)) as setup:
        start = trio.current_time()
        setup.recorder.on_signal(FakeSignal("s1", TSLA, Side.SELL, detected_at=start))
        await trio.sleep_until(start + 1.5)
        set_prices(state, bid="100")  # edge exactly 0: closed
        await trio.sleep_until(start + 3)
        followup_lines = lines(setup.followups)
    assert [(f["side"], f["taken_px"], f["edge_bps"], f["closed"]) for f in followup_lines] == [
        ("sell", "100.3", pytest.approx(30.0), False),
        ("sell", "100", 0.0, True),
    ]


async def test_followups_are_due_from_detected_at_not_from_when_on_signal_ran(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(tmp_path, {TSLA: market("99", "100", "100")}) as setup:
        detected = trio.current_time()
        await trio.sleep(0.25)
        setup.recorder.on_signal(FakeSignal("s1", TSLA, Side.BUY, detected_at=detected))
        await trio.sleep_until(detected + 1.0)
        await trio.testing.wait_all_tasks_blocked()
        assert [f["wall_ms"] for f in lines(setup.followups)] == [START_MS + 1000]


async def test_a_later_signal_due_sooner_wakes_the_timer_task(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(tmp_path, {TSLA: market("99", "100", "100")}, offsets_s=(1.0, 5.0)) as setup:
        start = trio.current_time()
        setup.recorder.on_signal(FakeSignal("a", TSLA, Side.BUY, detected_at=start))
        await trio.sleep_until(start + 2)  # a's next followup is due at +5
        setup.recorder.on_signal(FakeSignal("b", TSLA, Side.BUY, detected_at=start + 2))
        await trio.sleep_until(start + 8)
        followup_lines = lines(setup.followups)
    assert [(f["signal_id"], f["wall_ms"] - START_MS, f["lag_ms"]) for f in followup_lines] == [
        ("a", 1000, 0.0),
        ("b", 3000, 0.0),
        ("a", 5000, 0.0),
        ("b", 7000, 0.0),
    ]


async def test_missing_book_side_oracle_or_market_gives_nulls(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    states = {TSLA: market(bid="99", ask=None, oracle="100")}
    async with running(tmp_path, states, offsets_s=(1.0,)) as setup:
        now = trio.current_time()
        setup.recorder.on_signal(FakeSignal("no-ask", TSLA, Side.BUY, detected_at=now))
        setup.recorder.on_signal(FakeSignal("no-market", "xyz:GONE", Side.SELL, detected_at=now))
        await trio.sleep(2)
        followup_lines = lines(setup.followups)
    assert [
        (f["signal_id"], f["taken_px"], f["oracle_px"], f["edge_bps"], f["closed"]) for f in followup_lines
    ] == [
        ("no-ask", None, "100", None, None),
        ("no-market", None, None, None, None),
    ]


async def test_shutdown_drops_pending_followups_and_counts_them(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with running(tmp_path, {TSLA: market("99", "100", "100")}) as setup:
        start = trio.current_time()
        setup.recorder.on_signal(FakeSignal("a", TSLA, Side.BUY, detected_at=start))
        setup.recorder.on_signal(FakeSignal("b", TSLA, Side.BUY, detected_at=start))
        await trio.sleep_until(start + 2)
        assert setup.recorder.pending_followups == 4
    stats = setup.recorder.stats
    assert (stats.signals, stats.followups_recorded, stats.followups_dropped_at_shutdown) == (2, 2, 4)
    assert setup.recorder.pending_followups == 0
    assert len(lines(setup.signals)) == 2 and len(lines(setup.followups)) == 2


async def test_pending_followups_are_bounded(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async with running(tmp_path, {}, max_pending_followups=2) as setup:
        setup.recorder.on_signal(FakeSignal("a", TSLA, Side.BUY, detected_at=trio.current_time()))
        assert setup.recorder.pending_followups == 2
        assert setup.recorder.stats.followups_refused_full == 1


def test_edge_is_measured_against_the_oracle_in_bps() -> None:
    prices = followup_prices(market(bid="100.5", ask="101", oracle="100"), Side.SELL)
    assert prices.taken_px == Decimal("100.5") and prices.closed is False
    assert prices.edge_bps == pytest.approx(50.0)
    assert followup_prices(market(ask="99", oracle="0"), Side.BUY).edge_bps is None


def test_offsets_must_be_positive(tmp_path: Path) -> None:
    jsonl = DailyJsonl(tmp_path, "x", wall_ms=lambda: 0)
    with pytest.raises(ValueError):
        SignalRecorder(jsonl, jsonl, {}, offsets_s=(0.0,), wall_ms=lambda: 0)


async def test_a_signal_refused_by_a_full_queue_is_counted_and_gets_no_followups(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    signals = DailyJsonl(tmp_path, "signals", wall_ms=lambda: START_MS, queue_size=1)  # no writer running
    followups = DailyJsonl(tmp_path, "followups", wall_ms=lambda: START_MS, queue_size=1)
    recorder = SignalRecorder(signals, followups, {}, wall_ms=lambda: START_MS)
    recorder.on_signal(FakeSignal("kept", TSLA, Side.BUY, detected_at=trio.current_time()))
    recorder.on_signal(FakeSignal("refused", TSLA, Side.BUY, detected_at=trio.current_time()))
    assert (recorder.stats.signals, recorder.stats.signals_refused) == (1, 1)
    assert recorder.pending_followups == 3
