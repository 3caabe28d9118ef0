"""The market process: oracle cadence and clamp, valid uncrossed quotes, dislocations, faults, determinism."""

from __future__ import annotations

import itertools
from decimal import Decimal

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hip3.core.rounding import is_valid_price, is_valid_size
from hip3.sim.market_process import (
    MarketProcess,
    MarketUpdate,
    OracleUpdate,
    QuoteUpdate,
    dislocation_bps,
    price_tick,
)
from hip3.sim.scenario import DexDef, MarketDef, MarketProcessDef, Scenario, market_spec
from hip3.sim.scenario_file import default_scenario, shipped_scenario

QUIET = MarketProcessDef(volatility_bps=0.0, jump_probability=0.0, quote_lag_ms=1000, catch_up_ms=1500)


def _market(
    name: str, sz_decimals: int, start: str, process: MarketProcessDef = QUIET, *, is_delisted: bool = False
) -> MarketDef:
    return MarketDef(
        name=name,
        sz_decimals=sz_decimals,
        max_leverage=3,
        start_price=Decimal(start),
        process=process,
        is_delisted=is_delisted,
    )


def _scenario(
    process: MarketProcessDef = QUIET, *, seed: int = 1, extra: tuple[MarketDef, ...] = ()
) -> Scenario:
    btc, tsla = _market("BTC", 5, "95000", process), _market("TSLA", 3, "430.55", process)
    return Scenario(
        seed=seed,
        dexes=(DexDef(name="", markets=(btc,)), DexDef(name="xyz", markets=(tsla, *extra))),
    )


def _run(process: MarketProcess, until_ms: int) -> list[tuple[int, MarketUpdate]]:
    """Every update up to `until_ms`, stamped with the time it was due."""
    timed: list[tuple[int, MarketUpdate]] = [(0, update) for update in process.start()]
    while (due := process.next_event_ms()) <= until_ms:
        timed.extend((due, update) for update in process.advance(due))
    return timed


def _oracle_times(timed: list[tuple[int, MarketUpdate]], coin: str) -> list[int]:
    return [t for t, update in timed if isinstance(update, OracleUpdate) and update.coin == coin]


def _books(timed: list[tuple[int, MarketUpdate]], coin: str) -> list[tuple[int, QuoteUpdate]]:
    return [(t, update) for t, update in timed if isinstance(update, QuoteUpdate) and update.coin == coin]


# --- oracle cadence and clamp -----------------------------------------------------------------------------


def test_oracle_is_set_at_start_and_then_every_interval() -> None:
    timed = _run(MarketProcess(_scenario()), 30_000)
    for coin in ("BTC", "xyz:TSLA"):
        assert _oracle_times(timed, coin) == list(range(0, 30_001, 3000))


def test_start_gives_oracle_and_book_of_every_market_at_time_zero() -> None:
    updates = MarketProcess(_scenario()).start()
    assert [(type(u).__name__, u.coin) for u in updates] == [
        ("OracleUpdate", "BTC"),
        ("QuoteUpdate", "BTC"),
        ("OracleUpdate", "xyz:TSLA"),
        ("QuoteUpdate", "xyz:TSLA"),
    ]
    assert updates[2] == OracleUpdate("xyz:TSLA", Decimal("430.55"))


def test_advance_and_start_are_used_in_order() -> None:
    process = MarketProcess(_scenario())
    with pytest.raises(RuntimeError, match="start"):
        process.advance(3000)
    process.start()
    with pytest.raises(RuntimeError, match="twice"):
        process.start()


def test_a_quiet_market_sends_oracles_but_no_new_quotes() -> None:
    timed = _run(MarketProcess(_scenario()), 12_000)
    assert [t for t, _ in _books(timed, "xyz:TSLA")] == [0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    volatility=st.floats(0, 500),
    jump_probability=st.floats(0, 1),
    jump_bps=st.floats(0, 1000),
    sz_decimals=st.integers(0, 5),
    start=st.sampled_from(["0.5", "1.2345", "32.15", "430.55", "2650.5", "21050", "95000", "123456"]),
)
def test_oracle_moves_at_most_the_cap_per_update_and_stays_on_the_tick_grid(
    *, seed: int, volatility: float, jump_probability: float, jump_bps: float, sz_decimals: int, start: str
) -> None:
    params = MarketProcessDef(volatility_bps=volatility, jump_probability=jump_probability, jump_bps=jump_bps)
    market = _market("X", sz_decimals, start, params)
    scenario = Scenario(seed=seed, dexes=(DexDef(name="", markets=(market,)),))
    spec = market_spec(market, "", 0, 0)
    oracles = [u.oracle_px for _, u in _run(MarketProcess(scenario), 90_000) if isinstance(u, OracleUpdate)]
    assert len(oracles) == 31
    for previous, current in itertools.pairwise(oracles):
        assert abs(current - previous) <= previous * scenario.max_oracle_move
        assert is_valid_price(current, spec)


def test_a_forced_jump_beyond_the_cap_is_clamped_to_it() -> None:
    process = MarketProcess(_scenario())
    process.start()
    process.force_jump("xyz:TSLA", 500)
    process.force_jump("BTC", -500)
    process.advance(3000)
    assert process.oracle("xyz:TSLA") == Decimal("434.85")  # 430.55 · 1.01 = 434.8555, rounded towards it
    assert process.oracle("BTC") == Decimal(94050)


# --- quotes -----------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    spread=st.floats(0, 200),
    levels=st.integers(1, 8),
    step=st.floats(0.01, 50),
    notional=st.integers(1, 100_000),
    sz_decimals=st.integers(0, 5),
    start=st.sampled_from(
        ["0.5", "1.2345", "32.15", "99.99", "430.55", "9999.5", "21050", "99999", "123456"]
    ),
)
def test_quotes_are_never_crossed_and_always_valid_for_the_market(
    *, seed: int, spread: float, levels: int, step: float, notional: int, sz_decimals: int, start: str
) -> None:
    params = MarketProcessDef(
        volatility_bps=30.0,
        jump_probability=0.3,
        spread_bps=spread,
        levels=levels,
        level_step_bps=step,
        level_notional_usd=Decimal(notional),
    )
    market = _market("X", sz_decimals, start, params)
    scenario = Scenario(seed=seed, dexes=(DexDef(name="", markets=(market,)),))
    spec = market_spec(market, "", 0, 0)
    books = _books(_run(MarketProcess(scenario), 15_000), "X")
    fine_grid = price_tick(Decimal(start), spec) / Decimal(start) <= Decimal("0.001")
    assert books
    for _, book in books:
        assert len(book.asks) == levels
        assert len(book.bids) == levels or not fine_grid  # a coarse grid runs out of bids above zero
        if book.bids:
            assert book.bids[0][0] < book.asks[0][0]
        assert all(a[0] > b[0] for a, b in itertools.pairwise(book.bids))
        assert all(a[0] < b[0] for a, b in itertools.pairwise(book.asks))
        for price, size in book.bids + book.asks:
            assert is_valid_price(price, spec)
            assert is_valid_size(size, spec)


def test_levels_follow_spread_step_and_notional() -> None:
    book = MarketProcess(_scenario()).quotes("xyz:TSLA")
    # reference 430.55, half-spread 4 bps, step 3 bps, $2000 a level
    assert [str(px) for px, _ in book.bids] == ["430.37", "430.24", "430.11", "429.99", "429.86"]
    assert [str(px) for px, _ in book.asks] == ["430.73", "430.86", "430.99", "431.11", "431.24"]
    assert book.bids[0][1] == Decimal("4.647")  # 2000 / 430.37 floored to szDecimals 3


def test_on_a_coarse_tick_grid_bids_stop_above_zero() -> None:
    market = _market("X", 5, "0.3")
    book = MarketProcess(Scenario(dexes=(DexDef(name="", markets=(market,)),))).quotes("X")
    assert [px for px, _ in book.bids] == [Decimal("0.2"), Decimal("0.1")]  # 6 - szDecimals = 1 decimal
    assert [px for px, _ in book.asks] == [Decimal(p) for p in ("0.4", "0.5", "0.6", "0.7", "0.8")]


def test_a_delisted_market_has_an_oracle_but_no_makers() -> None:
    delisted = _market("OLD", 1, "12.3", is_delisted=True)
    timed = _run(MarketProcess(_scenario(extra=(delisted,))), 6000)
    assert _oracle_times(timed, "xyz:OLD") == [0, 3000, 6000]
    assert _books(timed, "xyz:OLD") == []


# --- dislocations -----------------------------------------------------------------------------------------


def test_an_up_jump_leaves_the_ask_below_the_oracle_until_the_makers_catch_up() -> None:
    process = MarketProcess(_scenario())
    process.start()
    process.force_jump("xyz:TSLA", 80)
    process.advance(3000)
    new_oracle = process.oracle("xyz:TSLA")
    assert new_oracle == Decimal("433.99")  # 430.55 · 1.008 = 433.9944
    stale = process.quotes("xyz:TSLA")
    assert stale.asks[0][0] == Decimal("430.73") < new_oracle
    assert dislocation_bps(new_oracle, stale) > 75

    step_times, edges = [], []
    while (due := process.next_event_ms()) < 6000:
        updates = process.advance(due)
        step_times.append(due)
        assert [type(u) for u in updates] == [QuoteUpdate]
        edges.append(dislocation_bps(new_oracle, process.quotes("xyz:TSLA")))
    assert step_times == [4250, 4500, 4750, 5000, 5250, 5500]  # lag 1000 ms, then 1500 ms in 250 ms steps
    assert edges == sorted(edges, reverse=True)
    assert process.reference("xyz:TSLA") == new_oracle
    assert edges[-1] == 0


def test_a_down_jump_leaves_the_bid_above_the_oracle() -> None:
    process = MarketProcess(_scenario())
    process.start()
    process.force_jump("BTC", -50)
    process.advance(3000)
    assert process.oracle("BTC") == Decimal(94525)
    assert process.quotes("BTC").bids[0][0] == Decimal(94962) > process.oracle("BTC")
    assert process.reference("BTC") == Decimal(95000)
    process.advance(5500)
    assert process.reference("BTC") == Decimal(94525)
    assert dislocation_bps(process.oracle("BTC"), process.quotes("BTC")) == 0


def test_a_new_jump_before_the_makers_caught_up_redirects_them() -> None:
    slow = attrs.evolve(QUIET, quote_lag_ms=2000, catch_up_ms=3000)
    process = MarketProcess(_scenario(slow))
    process.start()
    process.force_jump("xyz:TSLA", 80)
    process.advance(5999)
    halfway = process.reference("xyz:TSLA")
    assert Decimal("430.55") < halfway < process.oracle("xyz:TSLA")
    process.force_jump("xyz:TSLA", -80)
    process.advance(20_000)
    assert process.reference("xyz:TSLA") == process.oracle("xyz:TSLA")


def _periods_dislocated(scenario: Scenario) -> int:
    """How many (coin, 3 s oracle period) pairs of the first minute are dislocated > 15 bps."""
    process = MarketProcess(scenario)
    process.start()
    periods: set[tuple[str, int]] = set()
    while (due := process.next_event_ms()) <= 60_000:
        process.advance(due)
        periods |= {
            (coin, due // 3000)
            for coin in process.coins
            if dislocation_bps(process.oracle(coin), process.quotes(coin)) > 15
        }
    return len(periods)


def test_the_default_scenario_shows_several_dislocations_above_15_bps_a_minute() -> None:
    assert _periods_dislocated(default_scenario()) >= 4


def test_the_calm_scenario_never_dislocates_and_the_jumpy_one_often_does() -> None:
    assert _periods_dislocated(shipped_scenario("calm")) == 0
    assert _periods_dislocated(shipped_scenario("jumpy")) >= 10


# --- faults -----------------------------------------------------------------------------------------------


def test_stopped_market_data_sends_nothing_for_that_coin_and_resumes() -> None:
    process = MarketProcess(_scenario())
    process.start()
    process.stop_market_data("xyz:TSLA", True)
    process.force_jump("xyz:TSLA", 60)
    during = process.advance(8000)
    assert {u.coin for u in during} == {"BTC"}
    assert process.reference("xyz:TSLA") == process.oracle("xyz:TSLA")  # the market kept moving

    process.stop_market_data("xyz:TSLA", False)
    after = [u for u in process.advance(9000) if u.coin == "xyz:TSLA"]
    # the book at the market's next event (a maker step at 8250), the oracle at its next update (9000)
    assert after == [process.quotes("xyz:TSLA"), OracleUpdate("xyz:TSLA", process.oracle("xyz:TSLA"))]


def test_unknown_coin_is_a_key_error_naming_the_markets() -> None:
    with pytest.raises(KeyError, match="xyz:TSLA"):
        MarketProcess(_scenario()).oracle("TSLA")


# --- determinism ------------------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_updates() -> None:
    first = repr(_run(MarketProcess(default_scenario()), 120_000))
    second = repr(_run(MarketProcess(default_scenario()), 120_000))
    assert first == second
    other = repr(_run(MarketProcess(attrs.evolve(default_scenario(), seed=2)), 120_000))
    assert other != first


def test_adding_a_market_leaves_the_other_markets_paths_unchanged() -> None:
    params = MarketProcessDef(volatility_bps=20.0, jump_probability=0.2)
    extra = _market("NVDA", 3, "177.06", params)
    alone = _run(MarketProcess(_scenario(params)), 60_000)
    together = _run(MarketProcess(_scenario(params, extra=(extra,))), 60_000)
    assert [u for u in together if u[1].coin != "xyz:NVDA"] == alone
