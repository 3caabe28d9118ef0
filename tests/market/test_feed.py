"""The market feed: frames into per-market state, the dirty set, and a run against the in-memory simulator.

Simulator runs use the calm scenario (xyz:TSLA and xyz:GOLD discovered; oracle every 3 s) on MockClock.
Its bbo frames come only when the top of book changes, so a calm book can go 2 s or more without one; that is
why the stale-data test pins BBO_AGE to the exact instant after the last bbo and then shows CTX_AGE, the gate
that tells a stopped feed from a quiet book (ctx frames come every 3 s whether or not anything moved).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import attrs
import trio
import trio.testing

from hip3.core.market import MarketKey, MarketSpec
from hip3.market.feed import DirtyMarkets, MarketFeed, run_feed
from hip3.market.registry import MarketRegistry, discover
from hip3.market.state import MarketState
from hip3.net.ws import WsConnection, WsSettings
from hip3.protocol.messages import AssetCtx, Bbo, Level
from hip3.risk.market_gates import MarketRiskGates, RiskBlocked, RiskClear, RiskGate, RiskSettings
from hip3.sim.harness import MemorySim, run_memory_sim
from hip3.sim.scenario_file import shipped_scenario
from tests.market import SimInfo

TSLA = "xyz:TSLA"
GOLD = "xyz:GOLD"
SPECS = {
    TSLA: MarketSpec(TSLA, MarketKey("xyz", 1, 0), sz_decimals=3, max_leverage=10),
    GOLD: MarketSpec(GOLD, MarketKey("xyz", 1, 3), sz_decimals=4, max_leverage=20),
}
HALF_MS = 0.0005  # checks sit between the simulator's whole-millisecond events
FULL = RiskClear(1.0)


def bbo(coin: str, bid: str | None, ask: str | None, exchange_ms: int = 1000) -> Bbo:
    def level(px: str | None) -> Level | None:
        return None if px is None else Level(Decimal(px), Decimal("2.5"), 3)

    return Bbo(coin, exchange_ms, level(bid), level(ask))


def ctx(coin: str, oracle: str, *, mark: str = "430.50", open_interest: str = "1200") -> AssetCtx:
    return AssetCtx(
        coin=coin,
        oracle_px=Decimal(oracle),
        mark_px=Decimal(mark),
        mid_px=Decimal("430.56"),
        open_interest=Decimal(open_interest),
        funding=Decimal("0.0000125"),
        premium=None,
        day_ntl_vlm=Decimal(0),
        prev_day_px=None,
        impact_bid=None,
        impact_ask=None,
    )


# ------------------------------------------------------------------ apply


def test_a_bbo_changes_only_its_market_and_marks_it_dirty() -> None:
    feed = MarketFeed(SPECS)
    feed.apply(bbo(TSLA, "430.50", "430.61", exchange_ms=7000), 12.5)
    tsla = feed.states[TSLA]
    assert (tsla.bid_px, tsla.bid_sz, tsla.ask_px, tsla.ask_sz) == (
        Decimal("430.50"),
        Decimal("2.5"),
        Decimal("430.61"),
        Decimal("2.5"),
    )
    assert (tsla.bbo_exchange_ms, tsla.last_exchange_ms, tsla.bbo_received_at, tsla.frames) == (
        7000,
        7000,
        12.5,
        1,
    )
    assert feed.states[GOLD] == MarketState(GOLD, SPECS[GOLD])
    assert len(feed.dirty) == 1
    assert feed.stats == {"bbo": 1}


def test_a_missing_side_is_none_and_the_highest_exchange_time_is_kept() -> None:
    feed = MarketFeed(SPECS)
    feed.apply(bbo(TSLA, "430.50", "430.61", exchange_ms=7000), 1.0)
    feed.apply(bbo(TSLA, None, "430.61", exchange_ms=6990), 1.1)
    tsla = feed.states[TSLA]
    assert (tsla.bid_px, tsla.bid_sz, tsla.ask_px) == (None, None, Decimal("430.61"))
    assert (tsla.bbo_exchange_ms, tsla.last_exchange_ms) == (6990, 7000)


def test_asset_ctx_counts_only_oracle_changes_but_refreshes_its_time_on_every_message() -> None:
    feed = MarketFeed(SPECS)
    tsla = feed.states[TSLA]
    feed.apply(ctx(TSLA, "430.55"), 3.0)
    assert (tsla.oracle_px, tsla.previous_oracle_px, tsla.oracle_changed_at, tsla.oracle_updates) == (
        Decimal("430.55"),
        None,
        3.0,
        1,
    )
    feed.apply(ctx(TSLA, "430.55", mark="430.52", open_interest="1300"), 6.0)  # same oracle
    assert (tsla.oracle_changed_at, tsla.oracle_updates, tsla.ctx_received_at) == (3.0, 1, 6.0)
    assert (tsla.mark_px, tsla.open_interest) == (Decimal("430.52"), Decimal(1300))
    feed.apply(ctx(TSLA, "430.98"), 9.0)
    assert (tsla.oracle_px, tsla.previous_oracle_px, tsla.oracle_changed_at, tsla.oracle_updates) == (
        Decimal("430.98"),
        Decimal("430.55"),
        9.0,
        2,
    )
    assert (tsla.ctx_mid_px, tsla.funding, tsla.frames) == (Decimal("430.56"), Decimal("0.0000125"), 3)
    assert feed.states[GOLD] == MarketState(GOLD, SPECS[GOLD])


def test_unknown_coins_are_counted_and_ignored() -> None:
    feed = MarketFeed(SPECS)
    feed.apply(bbo("xyz:NOPE", "1", "2"), 1.0)
    feed.apply(ctx("xyz:NOPE", "1"), 1.0)
    assert feed.stats == {"unknown_coin": 2}
    assert len(feed.dirty) == 0
    assert all(state == MarketState(coin, SPECS[coin]) for coin, state in feed.states.items())


def test_subscriptions_are_bbo_and_asset_ctx_for_every_market() -> None:
    assert MarketFeed(SPECS).subscriptions() == [
        {"type": "bbo", "coin": TSLA},
        {"type": "activeAssetCtx", "coin": TSLA},
        {"type": "bbo", "coin": GOLD},
        {"type": "activeAssetCtx", "coin": GOLD},
    ]


# ------------------------------------------------------------------ the dirty set


async def test_ten_frames_of_one_market_make_one_entry_in_first_marked_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    feed = MarketFeed(SPECS)
    for tick in range(10):
        feed.apply(bbo(TSLA, "430.50", f"430.{60 + tick}", exchange_ms=1000 + tick), 1.0 + tick / 100)
    feed.apply(ctx(GOLD, "2650.5"), 1.2)
    feed.apply(ctx(TSLA, "430.55"), 1.3)
    start = trio.current_time()
    assert await feed.dirty.take() == [TSLA, GOLD]
    assert trio.current_time() == start
    assert feed.states[TSLA].ask_px == Decimal("430.69")  # the latest value, not a queue of ten
    assert len(feed.dirty) == 0


async def test_take_waits_and_wakes_at_the_instant_a_market_is_marked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    dirty = DirtyMarkets()
    start = trio.current_time()
    taken: list[tuple[float, list[str]]] = []

    async def consume() -> None:
        for _ in range(2):
            coins = await dirty.take()
            taken.append((trio.current_time() - start, coins))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.sleep(1.5)
        dirty.mark(GOLD)
        dirty.mark(GOLD)
        await trio.sleep(0.25)
        dirty.mark(TSLA)
    assert taken == [(1.5, [GOLD]), (1.75, [TSLA])]


# ------------------------------------------------------------------ against the simulator


@attrs.frozen
class FeedRun:
    sim: MemorySim
    start: float
    registry: MarketRegistry
    feed: MarketFeed
    connection: WsConnection


async def start_feed(nursery: trio.Nursery) -> FeedRun:
    sim: MemorySim = await nursery.start(run_memory_sim, shipped_scenario("calm"))
    start = trio.current_time()
    async with sim.http_client() as client:
        registry = await discover(SimInfo(client))
    feed = MarketFeed({spec.name: spec for spec in registry.specs})
    connection = WsConnection(sim.ws_server.connect, WsSettings(reconnect_jitter=0))
    await nursery.start(run_feed, connection, feed)
    await nursery.start(connection.run)
    await connection.wait_live()
    assert trio.current_time() == start
    return FeedRun(sim, start, registry, feed, connection)


async def until(feed: MarketFeed, condition: Callable[[], bool]) -> None:
    """Return at the virtual instant a frame makes `condition` true."""
    while not condition():
        await feed.dirty.take()


def book_top(sim: MemorySim, coin: str) -> tuple[Decimal, Decimal]:
    status, book = sim.exchange.info({"type": "l2Book", "coin": coin})
    assert status == 200 and isinstance(book, dict)
    bids, asks = book["levels"]
    return Decimal(bids[0]["px"]), Decimal(asks[0]["px"])


async def test_run_feed_fills_every_market_and_counts_oracle_updates_every_3_s(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    run = await start_feed(nursery)
    assert sorted(run.feed.states) == [GOLD, TSLA]
    assert run.connection.stats["SubscriptionAck"] == 4
    for update in range(1, 6):
        for coin in run.feed.states:
            run.sim.process.force_jump(coin, 5.0)  # every update moves the oracle, so every one counts
        previous = {coin: state.oracle_px for coin, state in run.feed.states.items()}
        await trio.sleep_until(run.start + 3 * update + HALF_MS)
        for coin, state in run.feed.states.items():
            arrived = run.start + 3000 * update / 1000
            assert (state.oracle_updates, state.ctx_received_at, state.oracle_changed_at) == (
                update,
                arrived,
                arrived,
            )
            assert state.oracle_px == run.sim.process.oracle(coin)
            assert state.previous_oracle_px == previous[coin]
    for coin, state in run.feed.states.items():
        assert state.bbo_received_at is not None and state.mark_px is not None
        assert (state.bid_px, state.ask_px) == book_top(run.sim, coin)
        assert state.bbo_valid
    assert run.feed.stats["unknown_coin"] == 0


async def test_stale_data_blocks_and_recovers(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    run = await start_feed(nursery)
    tsla, gold = run.feed.states[TSLA], run.feed.states[GOLD]
    gates = MarketRiskGates(RiskSettings(), run.registry)
    ctx_only = MarketRiskGates(RiskSettings(max_bbo_age_ms=0), run.registry)  # the predecessor's live setting

    # Stop TSLA's data at the instant of one of its bbo frames, after its first ctx.
    await until(run.feed, lambda: tsla.bbo_received_at is not None and tsla.ctx_received_at is not None)
    seen = tsla.bbo_received_at
    await until(run.feed, lambda: tsla.bbo_received_at != seen)
    run.sim.faults.stop_market_data(TSLA)
    await trio.sleep(HALF_MS)
    last_bbo, last_ctx = tsla.bbo_received_at, tsla.ctx_received_at
    assert last_bbo is not None and last_ctx is not None

    await trio.sleep_until(last_bbo + 2.0)
    assert gates.check(tsla, trio.current_time()) == FULL
    await trio.sleep_until(last_bbo + 2.001)
    assert gates.check(tsla, trio.current_time()) == RiskBlocked(
        RiskGate.BBO_AGE, "last bbo 2001 ms ago (max 2000 ms)"
    )

    await trio.sleep_until(last_ctx + 8.0)
    assert ctx_only.check(tsla, trio.current_time()) == FULL
    await trio.sleep_until(last_ctx + 8.001)
    assert ctx_only.check(tsla, trio.current_time()) == RiskBlocked(
        RiskGate.CTX_AGE, "last asset context 8001 ms ago (max 8000 ms)"
    )
    assert ctx_only.check(gold, trio.current_time()) == FULL  # GOLD's data kept coming
    assert (tsla.bbo_received_at, tsla.ctx_received_at) == (last_bbo, last_ctx)

    # Resume: the next 3 s oracle update (9 s after the last ctx) clears CTX_AGE at once; the book follows.
    run.sim.faults.stop_market_data(TSLA, False)
    await until(run.feed, lambda: tsla.ctx_received_at != last_ctx)
    assert round((trio.current_time() - last_ctx) * 1000) == 9000
    assert ctx_only.check(tsla, trio.current_time()) == FULL
    await until(run.feed, lambda: tsla.bbo_received_at != last_bbo)
    assert gates.check(tsla, trio.current_time()) == FULL
    assert gates.counters == {RiskGate.BBO_AGE: 1}
    assert ctx_only.counters == {RiskGate.CTX_AGE: 1}


async def test_a_halted_market_shows_an_empty_book_which_the_divergence_gate_reports(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    run = await start_feed(nursery)
    tsla = run.feed.states[TSLA]
    gates = MarketRiskGates(RiskSettings(), run.registry)
    await until(run.feed, lambda: tsla.bbo_received_at is not None and tsla.ctx_received_at is not None)
    assert gates.check(tsla, trio.current_time()) == FULL
    run.sim.faults.halt_market(TSLA)
    halted_at = trio.current_time()
    await until(run.feed, lambda: tsla.bid_px is None)
    assert trio.current_time() == halted_at
    assert gates.check(tsla, trio.current_time()) == RiskBlocked(
        RiskGate.MARK_MID_DIVERGENCE, "invalid bbo: empty book"
    )
