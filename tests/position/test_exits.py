"""Exits against the in-memory exchange with a running tracker, scheduler, sender and feed, on MockClock.

Times are asserted exactly: in wall-clock ms (the tracker's entry times and the exit's registration are both
read from the same clock) or as the virtual time of the market update an exit fired on.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR
from decimal import Decimal as D

import pytest
import trio
import trio.testing

from hip3.core.order import Cloid, Side, Tif
from hip3.position.exits import REASON_MARK_REGRESSION, ExitSettings
from hip3.position.model import OrderPhase, PendingOrder
from tests.position.exit_rig import BTC, TSLA, ExitRig, MarketUpdate, start_exit_rig

TIME_STOP_ONLY = ExitSettings(time_stop_threshold_ms=30_000, mark_regression_enabled=False)
FAR_TIME_STOP = ExitSettings(time_stop_threshold_ms=3_600_000, mark_regression_enabled=False)
WATCH_S = ExitSettings().watch_interval_s
REJECT_TEXT = "Reduce only order would increase position."


def entry_ms(rig: ExitRig, coin: str = TSLA) -> int:
    position = rig.tracker.position(coin)
    assert position is not None
    return position.entry_time_ms


def gap_bps(update: MarketUpdate) -> D:
    assert update.oracle is not None and update.bid is not None
    return (update.oracle - update.bid) / update.oracle * 10_000


# -- time stop -----------------------------------------------------------------------------------------------


async def test_the_time_stop_fires_at_the_threshold_from_the_real_entry_not_before(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_exit_rig(nursery)
    await rig.open(TSLA, Side.BUY, "0.05", "440")
    entered = entry_ms(rig)
    await trio.sleep(20)
    await rig.start_exits(TIME_STOP_ONLY)  # the entry was 20 s ago: the exit is due 10 s from now

    await trio.sleep((entered + 29_999 - rig.wall_ms()) / 1000)
    assert rig.exit_orders == []  # 1 ms before the threshold
    await rig.until_flat()

    [offered] = rig.exit_orders
    assert offered.wall_ms == entered + 30_000
    order = offered.order
    assert (order.side, order.size, order.reduce_only, order.tif.value) == (
        Side.SELL,
        D("0.050"),
        True,
        "Ioc",
    )
    assert order.limit_px == D("428.39")  # mark 430.55 · (1 − 50 bps) = 428.397…, rounded down for a sell
    assert rig.exchange_position(TSLA) == 0


async def test_the_time_stop_keeps_the_entry_time_through_a_resync(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_exit_rig(nursery)
    await rig.start_exits(TIME_STOP_ONLY)
    await rig.open(TSLA, Side.BUY, "0.05", "440")
    entered = entry_ms(rig)
    await trio.sleep(15)
    requested_at = trio.current_time()
    await rig.tracker.resync(
        frozenset({TSLA}), {TSLA: (D("0.05"), D("430.70"))}, rig.wall_ms(), requested_at=requested_at
    )
    await rig.tracker.settled()
    assert entry_ms(rig) == entered  # predecessor d1f44fd

    await rig.until_flat()
    [offered] = rig.exit_orders
    assert offered.wall_ms == entered + 30_000
    assert offered.order.limit_px == D("428.39")


# -- mark regression -----------------------------------------------------------------------------------------


async def open_long_on_a_jump(rig: ExitRig) -> tuple[D, float]:
    """Jump the oracle 50 bps up and buy the lagging book at once; returns the new oracle and the time."""
    rig.sim.process.force_jump(TSLA, 50.0)
    start_oracle = rig.state(TSLA).oracle_px
    await rig.until(lambda: rig.state(TSLA).oracle_px != start_oracle)
    oracle = rig.state(TSLA).oracle_px
    assert oracle is not None
    await rig.open(TSLA, Side.BUY, "0.05", "440")
    return oracle, trio.current_time()


async def test_mark_regression_fires_on_the_very_update_that_brings_the_bid_back(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_exit_rig(nursery)
    settings = ExitSettings(
        exit_threshold_bps=D(10), min_holding_time_ms=1_000, time_stop_threshold_ms=60_000
    )
    await rig.start_exits(settings)
    _, opened_at = await open_long_on_a_jump(rig)
    await rig.until_flat()

    after_entry = [update for update in rig.updates[TSLA] if update.at > opened_at]
    satisfying = next(update for update in after_entry if gap_bps(update) <= 10)
    assert any(gap_bps(update) > 10 for update in after_entry if update.at < satisfying.at)  # it had to wait
    [offered] = rig.exit_orders
    assert offered.at == satisfying.at
    assert offered.order.side is Side.SELL
    assert satisfying.bid is not None
    assert offered.order.limit_px == (satisfying.bid * D("0.995")).quantize(D("0.01"), rounding=ROUND_FLOOR)
    assert rig.exits is not None and rig.exits.stats[f"exit_orders_{REASON_MARK_REGRESSION}"] == 1
    assert rig.exchange_position(TSLA) == 0


async def test_mark_regression_waits_for_the_minimum_hold(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_exit_rig(nursery)
    settings = ExitSettings(
        exit_threshold_bps=D(10), min_holding_time_ms=5_000, time_stop_threshold_ms=60_000
    )
    await rig.start_exits(settings)
    _, opened_at = await open_long_on_a_jump(rig)
    entered = entry_ms(rig)
    await rig.until_flat()

    after_entry = [update for update in rig.updates[TSLA] if update.at > opened_at]
    first_satisfying = next(update for update in after_entry if gap_bps(update) <= 10)
    assert first_satisfying.wall_ms < entered + 5_000  # the book was back before the minimum hold
    first_after_hold = next(update for update in after_entry if update.wall_ms >= entered + 5_000)
    [offered] = rig.exit_orders
    assert offered.at == first_after_hold.at


# -- one order per market (J-004) ----------------------------------------------------------------------------


async def test_two_exit_paths_wanting_the_same_market_send_one_order_also_in_flight(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_exit_rig(nursery)
    # Mark regression always satisfied, and a time stop due while the exit is in flight.
    settings = ExitSettings(time_stop_threshold_ms=2_000, exit_threshold_bps=D(1_000), min_holding_time_ms=0)
    await rig.open(TSLA, Side.BUY, "0.05", "440")
    exits = await rig.start_exits(settings)
    rig.sim.faults.delay_post_responses(3.0)

    assert exits.flatten(TSLA, "hard_stop")
    assert not exits.flatten(TSLA, "shutdown")  # queued
    exits.on_market_update(TSLA)
    await rig.until(lambda: rig.scheduler.reduce_only_in_flight(TSLA))
    assert rig.guard.is_flattening(TSLA)
    assert not exits.flatten(TSLA, "operator")  # in flight
    exits.on_market_update(TSLA)
    await trio.sleep(2.5)  # the time stop comes due meanwhile
    assert rig.guard.is_flattening(TSLA) and rig.tracker.position(TSLA) is not None

    await rig.until_flat()
    assert len(rig.exit_orders) == 1
    assert len(rig.filled_oids(TSLA)) == 2  # the entry and one exit
    assert rig.exchange_position(TSLA) == 0 and not rig.guard.is_flattening(TSLA)


# -- failures and retries ------------------------------------------------------------------------------------


async def test_a_rejected_exit_releases_the_guard_and_is_retried_until_flat(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_exit_rig(nursery)
    await rig.open(TSLA, Side.BUY, "0.05", "440")
    exits = await rig.start_exits(FAR_TIME_STOP)
    rig.sim.faults.reject_next_orders(1, REJECT_TEXT)

    assert exits.flatten(TSLA, "hard_stop")
    await rig.until(lambda: exits.stats["exit_failures"] == 1)
    assert not rig.guard.is_flattening(TSLA)  # released on the rejection
    assert [event.text for event in rig.rejects] == [REJECT_TEXT]

    await rig.until_flat()
    first, retry = rig.exit_orders
    # The rejection is seen at the next watch of the in-flight exit; the retry follows after the backoff.
    assert retry.at == pytest.approx(first.at + WATCH_S + 0.5, abs=1e-9)
    assert first.order.cloid != retry.order.cloid
    assert rig.exchange_position(TSLA) == 0
    assert not rig.guard.is_flattening(TSLA)  # released after the fill
    assert exits.is_flat() and not exits.is_exiting(TSLA)


async def test_three_failures_in_a_row_are_reported_and_retries_back_off(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_exit_rig(nursery)
    await rig.open(TSLA, Side.BUY, "0.05", "440")
    exits = await rig.start_exits(FAR_TIME_STOP)
    reports: list[tuple[float, str, str]] = []
    exits.flatten_failure_listeners.append(lambda coin, why: reports.append((trio.current_time(), coin, why)))
    rig.sim.faults.reject_next_orders(3, REJECT_TEXT)

    exits.flatten(TSLA, "hard_stop")
    await rig.until_flat()

    start = rig.exit_orders[0].at
    since_start = [offered.at - start for offered in rig.exit_orders]
    # Each failure is seen at the next watch; the backoff then runs 0.5 s, 1 s, 2 s.
    expected = [0.0, WATCH_S + 0.5, 2 * WATCH_S + 1.5, 3 * WATCH_S + 3.5]
    assert since_start == pytest.approx(expected, abs=1e-9)
    [(reported_at, coin, why)] = reports
    assert coin == TSLA and why.startswith("hard_stop: 3 exit orders in a row")
    assert reported_at == pytest.approx(start + 3 * WATCH_S + 1.5, abs=1e-9)  # when the third was seen
    assert rig.exchange_position(TSLA) == 0


# -- flatten all and rest timeout ----------------------------------------------------------------------------


async def test_flatten_all_closes_every_market(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_exit_rig(nursery)
    await rig.open(BTC, Side.BUY, "0.0002", "96000")
    await rig.open(TSLA, Side.SELL, "0.05", "420")
    exits = await rig.start_exits(FAR_TIME_STOP)

    assert sorted(exits.flatten_all("hard_stop")) == sorted([BTC, TSLA])
    await rig.until_flat()

    sides = {offered.order.coin: offered.order.side for offered in rig.exit_orders}
    assert sides == {BTC: Side.SELL, TSLA: Side.BUY}
    assert rig.exchange_position(BTC) == rig.exchange_position(TSLA) == 0
    assert exits.is_flat() and not rig.guard.markets


async def test_a_reduce_only_order_resting_too_long_is_cancelled_and_the_exit_sent(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_exit_rig(nursery)
    await rig.open(TSLA, Side.BUY, "0.05", "440")
    settings = ExitSettings(
        time_stop_threshold_ms=3_600_000, mark_regression_enabled=False, reduce_only_timeout_ms=2_000
    )
    exits = await rig.start_exits(settings)
    resting = await rest_reduce_only_sell(rig, "450")

    assert not exits.flatten(TSLA, "hard_stop")  # a reduce-only order is already pending there
    await rig.until_flat()

    assert exits.stats["reduce_only_rest_timeouts"] == 1
    [exit_order] = [offered for offered in rig.exit_orders if offered.order.cloid != resting]
    assert exit_order.at >= rig.exit_orders[0].at + 2.0
    assert rig.exchange_position(TSLA) == 0


async def rest_reduce_only_sell(rig: ExitRig, limit_px: str) -> Cloid:
    """A Gtc reduce-only sell above the book, as another path might leave one; returns its cloid."""
    order = PendingOrder(
        cloid=Cloid.new(),
        coin=TSLA,
        asset=rig.specs[TSLA].key.asset_id,
        side=Side.SELL,
        size=D("0.05"),
        limit_px=D(limit_px),
        tif=Tif.GTC,
        reduce_only=True,
        registered_at=trio.current_time(),
    )
    assert rig.tracker.try_register_order(order)
    rig.scheduler.submit_reduce_only(order)
    await rig.until(lambda: order.phase is OrderPhase.RESTING)
    return order.cloid
