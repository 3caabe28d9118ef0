"""The driver on Trio's virtual clock: exact update times, the on_time tick, dislocations, determinism."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs
import trio
import trio.testing

from hip3.sim.driver import ExchangeHooks, run_market
from hip3.sim.market_process import MarketProcess, QuoteUpdate, dislocation_bps
from hip3.sim.scenario import DexDef, MarketDef, MarketProcessDef, Scenario
from hip3.sim.scenario_file import default_scenario

QUIET = MarketProcessDef(volatility_bps=0.0, jump_probability=0.0, quote_lag_ms=1000, catch_up_ms=1500)
TSLA = "xyz:TSLA"


def _scenario() -> Scenario:
    btc = MarketDef(name="BTC", sz_decimals=5, max_leverage=40, start_price=Decimal(95000), process=QUIET)
    tsla = MarketDef(
        name="TSLA", sz_decimals=3, max_leverage=10, start_price=Decimal("430.55"), process=QUIET
    )
    return Scenario(dexes=(DexDef(name="", markets=(btc,)), DexDef(name="xyz", markets=(tsla,))))


@attrs.define
class RecordingExchange:
    """Records every hook call with the Trio time it was made at."""

    calls: list[tuple[float, str, str, Any]] = attrs.field(factory=list)

    def set_oracle(self, coin: str, oracle_px: Decimal) -> None:
        self.calls.append((trio.current_time(), "oracle", coin, oracle_px))

    def set_maker_quotes(
        self, coin: str, bids: Sequence[tuple[Decimal, Decimal]], asks: Sequence[tuple[Decimal, Decimal]]
    ) -> None:
        self.calls.append((trio.current_time(), "quotes", coin, QuoteUpdate(coin, tuple(bids), tuple(asks))))

    def on_time(self) -> None:
        self.calls.append((trio.current_time(), "on_time", "", None))

    def times(self, kind: str, coin: str = "") -> list[float]:
        return [t for t, k, c, _ in self.calls if k == kind and c == coin]

    def values(self, kind: str, coin: str) -> list[tuple[float, Any]]:
        return [(t, value) for t, k, c, value in self.calls if k == kind and c == coin]


def _at(start: float, *ms: int) -> list[float]:
    """Virtual times `ms` after `start`, computed as the driver computes them."""
    return [start + m / 1000 for m in ms]


async def _run_for(process: MarketProcess, seconds: float) -> tuple[float, RecordingExchange]:
    """Run the driver for `seconds` (and half a millisecond, so no market event ties with the stop)."""
    exchange = RecordingExchange()
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(run_market, process, exchange)
        await trio.sleep(seconds + 0.0005)
        nursery.cancel_scope.cancel()
    return start, exchange


def test_the_recording_exchange_satisfies_the_hooks_protocol() -> None:
    hooks: ExchangeHooks = RecordingExchange()
    assert isinstance(hooks, ExchangeHooks)


async def test_initial_state_is_applied_before_started(autojump_clock: trio.testing.MockClock) -> None:
    exchange = RecordingExchange()
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await nursery.start(run_market, MarketProcess(_scenario()), exchange)
        assert [(kind, coin) for t, kind, coin, _ in exchange.calls if t == start] == [
            ("oracle", "BTC"),
            ("quotes", "BTC"),
            ("oracle", TSLA),
            ("quotes", TSLA),
            ("on_time", ""),
        ]
        nursery.cancel_scope.cancel()


async def test_oracle_updates_land_at_start_then_every_three_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start, exchange = await _run_for(MarketProcess(_scenario()), 30)
    expected = _at(start, *range(0, 30_001, 3000))
    assert exchange.times("oracle", "BTC") == expected
    assert exchange.times("oracle", TSLA) == expected


async def test_on_time_is_called_every_second_between_market_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    process = MarketProcess(_scenario())
    process.force_jump(TSLA, 30)
    start, exchange = await _run_for(process, 10)
    quote_times = exchange.times("quotes", TSLA)[1:]
    assert quote_times == _at(start, 4250, 4500, 4750, 5000, 5250, 5500)
    # at every whole second, and after every wake-up for the market (here the makers' steps)
    on_time = exchange.times("on_time")
    assert set(_at(start, *range(0, 10_001, 1000))) <= set(on_time)
    assert set(quote_times) <= set(on_time)
    assert max(later - earlier for earlier, later in itertools.pairwise(on_time)) <= 1.0


async def test_a_forced_jump_dislocates_the_book_until_the_makers_catch_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    process = MarketProcess(_scenario())
    process.force_jump(TSLA, 80)  # applied at the first oracle update after start, t = 3 s
    start, exchange = await _run_for(process, 8)

    oracles = exchange.values("oracle", TSLA)
    jump_time, new_oracle = oracles[1]
    assert jump_time == start + 3
    assert new_oracle == Decimal("433.99")
    books = exchange.values("quotes", TSLA)
    book_at_jump = [book for t, book in books if t <= jump_time][-1]
    assert book_at_jump.asks[0][0] < new_oracle  # the stale ask is below the new oracle
    assert dislocation_bps(new_oracle, book_at_jump) > 75

    later = [(t, book) for t, book in books if t > jump_time]
    assert [t for t, _ in later] == _at(start, 4250, 4500, 4750, 5000, 5250, 5500)  # lag 1 s, catch-up 1.5 s
    edges = [dislocation_bps(new_oracle, book) for _, book in later]
    assert edges == sorted(edges, reverse=True) and edges[0] > 0 and edges[-1] == 0
    assert later[-1][1] == process.quotes(TSLA)
    assert process.reference(TSLA) == new_oracle


async def test_stopped_market_data_is_not_applied(autojump_clock: trio.testing.MockClock) -> None:
    process = MarketProcess(_scenario())
    exchange = RecordingExchange()
    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        await nursery.start(run_market, process, exchange)
        await trio.sleep(1)
        process.stop_market_data(TSLA, True)
        await trio.sleep(9)
        process.stop_market_data(TSLA, False)
        await trio.sleep(2.5)
        nursery.cancel_scope.cancel()
    assert exchange.times("oracle", TSLA) == _at(start, 0, 12_000)
    assert exchange.times("oracle", "BTC") == _at(start, 0, 3000, 6000, 9000, 12_000)


async def test_the_same_seed_gives_identical_call_logs(autojump_clock: trio.testing.MockClock) -> None:
    def relative(start: float, exchange: RecordingExchange) -> str:
        return repr([(round(t - start, 6), kind, coin, value) for t, kind, coin, value in exchange.calls])

    first = relative(*await _run_for(MarketProcess(default_scenario()), 20))
    second = relative(*await _run_for(MarketProcess(default_scenario()), 20))
    assert first == second
    reseeded = attrs.evolve(default_scenario(), seed=99)
    assert relative(*await _run_for(MarketProcess(reseeded), 10)) != first
