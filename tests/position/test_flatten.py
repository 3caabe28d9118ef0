"""The flatten guard, the exit price arithmetic, and `Exits` against a running tracker with no sender.

Without a sender an exit order stays queued in the scheduler, which shows exactly when it was queued and
that the guard is held meanwhile.
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest
import trio
import trio.testing

from hip3.core.clock import trio_wall_clock
from hip3.core.market import MarketKey, MarketSpec
from hip3.core.order import Cloid, Side, Tif
from hip3.core.rounding import ZeroSizeError
from hip3.execution.scheduler import Scheduler, SubmitResult
from hip3.market.state import MarketState
from hip3.position.exits import (
    Exits,
    ExitSettings,
    Pricing,
    exit_size,
    reference_price,
    regression_gap_bps,
    slipped_limit,
)
from hip3.position.flatten import FlattenGuard
from hip3.position.model import PendingOrder, Position
from hip3.position.tracker import PositionTracker, TrackerHandle

TSLA, GOLD = "xyz:TSLA", "xyz:GOLD"
TSLA_SPEC = MarketSpec(name=TSLA, key=MarketKey("xyz", 1, 0), sz_decimals=3, max_leverage=10)
BTC_SPEC = MarketSpec(name="BTC", key=MarketKey("", 0, 0), sz_decimals=5, max_leverage=40)
START_MS = 1_767_225_600_000


def tsla_state(
    bid: str = "430.33", ask: str = "430.77", oracle: str = "430.55", mark: str = "430.55"
) -> MarketState:
    return MarketState(TSLA, TSLA_SPEC, bid_px=D(bid), ask_px=D(ask), oracle_px=D(oracle), mark_px=D(mark))


# -- the guard -----------------------------------------------------------------------------------------------


def test_the_guard_admits_one_exit_per_market_until_it_is_ended() -> None:
    guard = FlattenGuard()
    assert guard.try_begin(TSLA)
    assert not guard.try_begin(TSLA)
    assert guard.try_begin(GOLD)  # markets are independent
    assert guard.is_flattening(TSLA) and guard.markets == {TSLA, GOLD}

    guard.end(TSLA)
    guard.end(TSLA)  # ending twice is harmless
    assert not guard.is_flattening(TSLA) and guard.is_flattening(GOLD)
    assert guard.try_begin(TSLA)
    assert guard.stats == {"begun": 3, "refused_in_progress": 1, "ended": 1}


# -- arithmetic ----------------------------------------------------------------------------------------------


def test_the_slipped_limit_is_rounded_in_the_aggressive_direction() -> None:
    assert slipped_limit(D("430.55"), Side.SELL, D(50), TSLA_SPEC) == D("428.39")  # 428.397… down
    assert slipped_limit(D("430.55"), Side.BUY, D(50), TSLA_SPEC) == D("432.71")  # 432.702… up
    assert slipped_limit(D("95123.4"), Side.BUY, D(50), BTC_SPEC) == D("95600")  # 5 significant figures
    assert slipped_limit(D("95123.4"), Side.SELL, D(50), BTC_SPEC) == D("94647")
    assert slipped_limit(D("430.55"), Side.SELL, D(0), TSLA_SPEC) == D("430.55")


def test_the_exit_size_is_the_position_floored_to_the_lot() -> None:
    assert exit_size(Position(TSLA, D("-0.05789"), D(430), 0), TSLA_SPEC) == D("0.057")
    assert exit_size(Position(TSLA, D("0.05"), D(430), 0), TSLA_SPEC) == D("0.050")
    with pytest.raises(ZeroSizeError):
        exit_size(Position(TSLA, D("0.0004"), D(430), 0), TSLA_SPEC)


def test_the_regression_gap_is_measured_at_the_touch_an_exit_would_hit() -> None:
    long, short = Position(TSLA, D("0.05"), D(430), 0), Position(TSLA, D("-0.05"), D(431), 0)
    state = tsla_state(bid="430.00", ask="431.00", oracle="430.00")
    assert regression_gap_bps(long, state) == 0
    assert regression_gap_bps(short, state) == D(1) / D(430) * 10_000
    assert regression_gap_bps(long, MarketState(TSLA, TSLA_SPEC, bid_px=D(430))) is None  # no oracle


def test_the_reference_price_is_the_touch_or_the_mark() -> None:
    state = tsla_state()
    assert reference_price(state, Side.SELL, Pricing.TOUCH) == D("430.33")
    assert reference_price(state, Side.BUY, Pricing.TOUCH) == D("430.77")
    assert reference_price(state, Side.SELL, Pricing.MARK) == D("430.55")
    no_mark = MarketState(TSLA, TSLA_SPEC, bid_px=D("430.33"), oracle_px=D("430.60"))
    assert reference_price(no_mark, Side.SELL, Pricing.MARK) == D("430.60")
    assert reference_price(MarketState(TSLA, TSLA_SPEC), Side.SELL, Pricing.MARK) is None


# -- Exits with no sender ------------------------------------------------------------------------------------


async def start_exits(
    nursery: trio.Nursery, scheduler: Scheduler, settings: ExitSettings, guard: FlattenGuard
) -> tuple[TrackerHandle, Exits]:
    wall_ms = trio_wall_clock(START_MS)
    actor = PositionTracker(wall_ms)
    tracker: TrackerHandle = await nursery.start(actor.run)
    exits = Exits(
        tracker, scheduler, {TSLA: tsla_state()}, {TSLA: TSLA_SPEC}, guard, settings, wall_ms=wall_ms
    )
    actor.fill_listeners.append(exits.on_fill)
    return tracker, exits


async def install(tracker: TrackerHandle, size: str, entry_ms: int) -> None:
    """A position as a resync (or a restart from the journal) installs it, with its entry time."""
    await trio.sleep(0.001)  # the snapshot is asked for after the tracker started
    await tracker.resync(
        frozenset({TSLA}), {TSLA: (D(size), D(430))}, entry_ms, requested_at=trio.current_time()
    )
    await tracker.settled()


async def test_a_position_installed_with_an_old_entry_time_is_stopped_at_its_real_threshold(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    scheduler, guard = Scheduler(), FlattenGuard()
    settings = ExitSettings(time_stop_threshold_ms=30_000, mark_regression_enabled=False)
    tracker, exits = await start_exits(nursery, scheduler, settings, guard)
    started = trio.current_time()
    await install(tracker, "0.05", START_MS - 20_000)  # entered 20 s before this process started
    await nursery.start(exits.run)

    await trio.sleep_until(started + 9.999)
    assert scheduler.queued() == (0, 0, 0)
    await trio.sleep_until(started + 10)
    await trio.testing.wait_all_tasks_blocked()
    assert scheduler.queued() == (0, 1, 0)
    assert guard.is_flattening(TSLA) and tracker.has_pending_reduce_only(TSLA)
    assert exits.stats["time_stop_triggered"] == 1


async def test_an_exit_the_scheduler_refuses_is_ended_in_the_tracker_and_frees_the_guard(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    scheduler, guard = Scheduler(), FlattenGuard()
    settings = ExitSettings(time_stop_threshold_ms=3_600_000, mark_regression_enabled=False)
    tracker, exits = await start_exits(nursery, scheduler, settings, guard)
    await install(tracker, "0.05", START_MS)
    await nursery.start(exits.run)
    foreign = PendingOrder(Cloid.new(), TSLA, 110_000, Side.SELL, D("0.05"), D(428), Tif.IOC, True, 0.0)
    assert scheduler.submit_reduce_only(foreign) is SubmitResult.QUEUED  # queued by a path outside the guard

    assert not exits.flatten(TSLA, "hard_stop")
    await trio.testing.wait_all_tasks_blocked()
    await tracker.settled()
    assert not guard.is_flattening(TSLA)
    assert tracker.pending_orders() == []  # the refused exit's registration was ended
    assert exits.stats["exit_failures"] == 1 and exits.is_exiting(TSLA)

    assert exits.stop_retrying(TSLA)
    assert not exits.is_exiting(TSLA)
    assert not exits.is_flat()


async def test_flatten_without_a_position_does_nothing(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    scheduler, guard = Scheduler(), FlattenGuard()
    _, exits = await start_exits(nursery, scheduler, ExitSettings(), guard)
    assert not exits.flatten(TSLA, "operator")
    assert exits.flatten_all("hard_stop") == []
    assert exits.is_flat() and scheduler.is_empty and not guard.markets
