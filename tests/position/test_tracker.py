"""The tracker actor and its handle: registration paths, fills from both sources, resyncs, order updates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import attrs
import pytest
import trio

from hip3.core.order import Side
from hip3.position.model import OrderPhase, PendingOrder, Position
from hip3.position.tracker import AppliedFill, PositionTracker, TrackerHandle
from hip3.protocol.messages import OrderState
from tests.position.helpers import SILVER, TSLA, fill, fills, order, update


class FakeWall:
    def __init__(self) -> None:
        self.ms = 1_000

    def __call__(self) -> int:
        return self.ms


@pytest.fixture
def wall() -> FakeWall:
    return FakeWall()


@pytest.fixture
async def tracker(nursery: trio.Nursery, wall: FakeWall) -> AsyncIterator[PositionTracker]:
    tracker = PositionTracker(wall)
    await nursery.start(tracker.run)
    yield tracker


async def registered(handle: TrackerHandle, **kwargs: Any) -> PendingOrder:
    pending = order(**kwargs)
    assert handle.try_register_order(pending)
    await handle.settled()
    return pending


# -- registration ----------------------------------------------------------------------------------------


async def test_registration_updates_the_caches_once(tracker: PositionTracker) -> None:
    handle = tracker.handle
    pending = order(size="0.1", px="430")
    assert handle.try_register_order(pending)
    assert handle.pending_count(TSLA) == 1 and handle.pending_notional(TSLA) == D("43.0")
    await handle.settled()
    assert tracker.stats["registered"] == 1
    assert handle.pending_by_cloid(pending.cloid) is pending


async def test_reduce_only_orders_do_not_count_as_exposure(tracker: PositionTracker) -> None:
    handle = tracker.handle
    assert handle.try_register_order(order(reduce_only=True))
    assert handle.pending_count(TSLA) == 1 and handle.pending_notional(TSLA) == 0
    assert handle.has_pending_reduce_only(TSLA)


async def test_the_seeds_double_count_bug_cannot_happen(nursery: trio.Nursery, wall: FakeWall) -> None:
    """S-1: a full inbox, the fast path then the actor-only path, then a terminal update."""
    tracker = PositionTracker(wall, inbox_size=1)
    handle = tracker.handle
    assert handle.try_register_order(
        order(coin=SILVER)
    )  # fills the one-slot inbox (the actor is not running)
    first = order()
    assert not handle.try_register_order(first)  # inbox full: the caches hold it, the caller must finish
    assert handle.pending_count(TSLA) == 1
    await nursery.start(tracker.run)
    await handle.register_actor_only(first)
    await handle.settled()
    assert handle.pending_count(TSLA) == 1  # not 2
    await handle.order_ended(first.cloid, OrderState.REJECTED, "Order could not immediately match")
    await handle.settled()
    assert handle.pending_count(TSLA) == 0 and handle.pending_notional(TSLA) == 0
    assert handle.try_register_order(order())  # the market is free again


async def test_an_actor_only_registration_after_the_order_ended_is_skipped(
    nursery: trio.Nursery, wall: FakeWall
) -> None:
    tracker = PositionTracker(wall, inbox_size=1)
    handle = tracker.handle
    assert handle.try_register_order(order(coin=SILVER))
    late = order()
    assert not handle.try_register_order(late)
    await nursery.start(tracker.run)
    await handle.order_ended(
        late.cloid, OrderState.REJECTED, "rejected before registration reached the actor"
    )
    await handle.register_actor_only(late)
    await handle.settled()
    assert tracker.stats["register_skipped_already_ended"] == 1
    assert handle.pending_count(TSLA) == 0  # nothing resurrected


# -- fills -----------------------------------------------------------------------------------------------


async def test_post_response_fill_then_the_same_fill_on_userfills_counts_once(
    tracker: PositionTracker,
) -> None:
    handle = tracker.handle
    pending = await registered(handle, size="0.2", px="440")
    await handle.response_fill(pending.cloid, 77, D("0.2"), D("430.5"), ends_order=True)
    await handle.settled()
    assert handle.position(TSLA) == Position(TSLA, D("0.2"), D("430.5"), 1_000)
    assert handle.pending_count(TSLA) == 0
    await handle.user_fills(fills(fill(77, "0.2", "430.5")))
    await handle.settled()
    assert handle.position(TSLA) == Position(TSLA, D("0.2"), D("430.5"), 1_000)
    assert tracker.stats["fills_already_counted"] == 1


async def test_userfills_first_then_the_response_counts_once(tracker: PositionTracker) -> None:
    handle = tracker.handle
    pending = await registered(handle, size="0.3", px="440")
    await handle.user_fills(fills(fill(78, "0.1", "429"), fill(78, "0.2", "430.5")))
    await handle.response_fill(pending.cloid, 78, D("0.3"), D("430"), ends_order=True)
    await handle.settled()
    position = handle.position(TSLA)
    assert position is not None and position.size == D("0.3") and position.entry_px == D(430)


async def test_several_partial_fills_of_one_order_all_count(tracker: PositionTracker) -> None:
    """The predecessor's cloid dedup dropped the second partial fill of an order (§6 item 12)."""
    handle = tracker.handle
    await registered(handle, size="0.3")
    await handle.user_fills(fills(fill(79, "0.1", "430")))
    await handle.user_fills(fills(fill(79, "0.1", "431")))
    await handle.user_fills(fills(fill(79, "0.1", "432")))
    await handle.settled()
    position = handle.position(TSLA)
    assert position is not None and position.size == D("0.3") and position.entry_px == D(431)


async def test_duplicated_userfills_are_counted_once(tracker: PositionTracker) -> None:
    handle = tracker.handle
    duplicated = fill(80, "0.1", "430")
    await handle.user_fills(fills(duplicated))
    await handle.user_fills(fills(duplicated))
    await handle.settled()
    position = handle.position(TSLA)
    assert position is not None and position.size == D("0.1")
    assert tracker.stats["fills_duplicate"] == 1


async def test_a_userfills_snapshot_is_not_replayed_but_a_reconcile_fetch_of_its_fill_is(
    tracker: PositionTracker,
) -> None:
    """The resubscription's snapshot comes before the reconcile's userFillsByTime: a fill made while the
    socket was down is in both, and the fetch must still apply (and journal) it, once."""
    handle = tracker.handle
    gap_fill = fill(81, "0.5", "400")
    await handle.user_fills(fills(gap_fill, snapshot=True))
    await handle.settled()
    assert handle.position(TSLA) is None
    await handle.user_fills(fills(gap_fill))  # the reconcile's fetch
    await handle.user_fills(fills(gap_fill))  # and its overlap, asked again
    await handle.settled()
    position = handle.position(TSLA)
    assert position is not None and position.size == D("0.5")
    assert tracker.stats["fills_in_snapshot"] == 1 and tracker.stats["fills_duplicate"] == 1
    assert tracker.stats["fills_applied_userFills"] == 1


async def test_a_fill_of_an_order_we_do_not_know_still_moves_the_position(tracker: PositionTracker) -> None:
    handle = tracker.handle
    await handle.user_fills(fills(fill(999, "0.1", "430", side=Side.SELL)))
    await handle.settled()
    position = handle.position(TSLA)
    assert position is not None and position.size == D("-0.1")


async def test_fill_listeners_hear_realized_pnl(tracker: PositionTracker) -> None:
    heard: list[AppliedFill] = []
    tracker.fill_listeners.append(heard.append)
    handle = tracker.handle
    await handle.user_fills(fills(fill(82, "0.2", "430")))
    await handle.user_fills(fills(fill(83, "0.2", "440", side=Side.SELL)))
    await handle.settled()
    assert [(f.side, f.effect.realized_pnl) for f in heard] == [(Side.BUY, D(0)), (Side.SELL, D("2.0"))]
    assert handle.position(TSLA) is None


async def test_an_applied_fill_carries_the_exchange_tid_and_fee_only_when_it_is_one_whole_fill(
    tracker: PositionTracker,
) -> None:
    """The journal keys fills by the exchange's trade id and books its fee: a fill applied from userFills
    as a whole carries both; what a response applied first, and the rest a fill adds, carry no fee."""
    heard: list[AppliedFill] = []
    tracker.fill_listeners.append(heard.append)
    handle = tracker.handle
    await handle.user_fills(fills(fill(84, "0.2", "430", tid=7001)))
    pending = await registered(handle, size="0.3")
    await handle.response_fill(pending.cloid, 85, D("0.1"), D(431), ends_order=False)
    await handle.user_fills(fills(fill(85, "0.3", "431", tid=7002)))
    await handle.settled()
    assert [(f.source, f.size, f.tid, f.fee) for f in heard] == [
        ("userFills", D("0.2"), 7001, D("0.01")),
        ("response", D("0.1"), None, None),
        ("userFills", D("0.2"), 7002, None),
    ]


# -- order updates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "ends"),
    [("filled", True), ("canceled", True), ("perpMarginRejected", True), ("marginCanceled", True),
     ("scheduledCancel", True), ("weirdNew", True), ("open", False), ("triggered", False)],
)  # fmt: skip
async def test_order_update_statuses(tracker: PositionTracker, status: str, ends: bool) -> None:
    handle = tracker.handle
    pending = await registered(handle)
    await handle.order_acked(pending.cloid, 90)
    await handle.order_updates(update(pending, 90, status))
    await handle.settled()
    assert (handle.pending_count(TSLA) == 0) is ends


async def test_an_open_update_records_the_oid(tracker: PositionTracker) -> None:
    handle = tracker.handle
    pending = await registered(handle)
    await handle.order_updates(update(pending, 91, "open"))
    await handle.settled()
    assert handle.pending_by_oid(91) is pending and pending.phase is OrderPhase.RESTING


async def test_an_unknown_outcome_keeps_the_order_pending(tracker: PositionTracker) -> None:
    handle = tracker.handle
    pending = await registered(handle)
    await handle.order_unknown(pending.cloid)
    await handle.settled()
    assert handle.pending_count(TSLA) == 1 and pending.phase is OrderPhase.UNKNOWN


# -- resync ----------------------------------------------------------------------------------------------


async def test_resync_installs_and_removes_per_covered_market(
    tracker: PositionTracker, wall: FakeWall
) -> None:
    handle = tracker.handle
    positions = {TSLA: (D("0.2"), D(430)), SILVER: (D(-3), D(32))}
    await handle.resync(frozenset({TSLA, SILVER}), positions, 500, requested_at=trio.current_time())
    await handle.settled()
    assert handle.position(SILVER) == Position(SILVER, D(-3), D(32), 500)
    await handle.resync(
        frozenset({TSLA, SILVER}), {TSLA: (D("0.2"), D(430))}, 600, requested_at=trio.current_time()
    )
    await handle.settled()
    assert handle.position(SILVER) is None and handle.position(TSLA) is not None


async def test_resync_keeps_the_entry_time_of_a_position_that_already_existed(
    tracker: PositionTracker, wall: FakeWall
) -> None:
    """d1f44fd: a position opened 10 s ago keeps its entry time through a periodic resync."""
    handle = tracker.handle
    await handle.user_fills(fills(fill(84, "0.2", "430")))
    await handle.settled()
    wall.ms += 10_000
    await trio.sleep(0.001)  # the snapshot is asked for after the fill
    await handle.resync(
        frozenset({TSLA}), {TSLA: (D("0.2"), D("430.1"))}, wall.ms, requested_at=trio.current_time()
    )
    await handle.settled()
    assert handle.position(TSLA) == Position(TSLA, D("0.2"), D("430.1"), 1_000)


async def test_a_snapshot_asked_for_before_a_fill_does_not_undo_it(tracker: PositionTracker) -> None:
    """§6 item 11: the snapshot was asked for before the fill that the actor has since applied."""
    handle = tracker.handle
    asked_at = trio.current_time()
    await trio.sleep(0.001)
    await handle.user_fills(fills(fill(85, "0.2", "430")))
    await handle.settled()
    await handle.resync(frozenset({TSLA}), {}, 4_900, requested_at=asked_at)  # says flat
    await handle.settled()
    assert handle.position(TSLA) is not None
    assert tracker.stats["resync_skipped_busy_market"] == 1


async def test_a_snapshot_is_not_applied_to_a_market_with_a_pending_order(tracker: PositionTracker) -> None:
    handle = tracker.handle
    await registered(handle)
    await handle.resync(frozenset({TSLA}), {TSLA: (D(1), D(430))}, 5_000, requested_at=trio.current_time())
    await handle.settled()
    assert handle.position(TSLA) is None and tracker.stats["resync_skipped_busy_market"] == 1


async def test_fills_an_accepted_snapshot_holds_are_not_counted_again(tracker: PositionTracker) -> None:
    """The snapshot already holds a fill whose userFills message comes later: it must not count twice."""
    handle = tracker.handle
    await handle.resync(
        frozenset({TSLA}), {TSLA: (D("0.2"), D(430))}, 5_000, requested_at=trio.current_time()
    )
    await handle.settled()
    late = attrs.evolve(fill(86, "0.2", "430"), time_ms=4_999)
    await handle.user_fills(fills(late))
    newer = attrs.evolve(fill(87, "0.1", "431"), time_ms=5_001)
    await handle.user_fills(fills(newer))
    await handle.settled()
    position = handle.position(TSLA)
    assert position is not None and position.size == D("0.3")
    assert tracker.stats["fills_absorbed_by_snapshot"] == 1


async def test_a_fill_of_a_pending_order_counts_even_when_the_exchange_clock_stepped_back(
    tracker: PositionTracker,
) -> None:
    """Soak, 24 h: a snapshot accepted at exchange time 5,000, then the exchange's clock stepped back and an
    exit (IOC, oid not known yet) filled at 4,000. Its fill must count: it cannot be in a snapshot accepted
    before the order was registered. Dropped as 'absorbed', it reached neither position nor journal."""
    handle = tracker.handle
    await handle.resync(
        frozenset({TSLA}), {TSLA: (D("0.2"), D(430))}, 5_000, requested_at=trio.current_time()
    )
    await handle.settled()
    exit_order = await registered(handle, size="0.2", side=Side.SELL, reduce_only=True)
    stepped_back = attrs.evolve(fill(90, "0.2", "431", side=Side.SELL), time_ms=4_000)
    await handle.user_fills(fills(stepped_back))
    await handle.order_updates(update(exit_order, 90, "filled"))
    await handle.settled()
    assert handle.position(TSLA) is None
    assert handle.pending_orders() == []
    assert tracker.stats["fills_applied_userFills"] == 1 and tracker.stats["fills_absorbed_by_snapshot"] == 0


async def test_a_late_response_after_an_accepted_snapshot_is_not_counted_again(
    tracker: PositionTracker,
) -> None:
    """orderUpdates ended the order, a snapshot holding its fill was accepted, then the response came."""
    handle = tracker.handle
    pending = await registered(handle, size="0.2")
    await handle.order_updates(update(pending, 88, "filled"))
    await handle.settled()
    await trio.sleep(0.001)
    await handle.resync(
        frozenset({TSLA}), {TSLA: (D("0.2"), D(430))}, 5_000, requested_at=trio.current_time()
    )
    await handle.settled()
    await handle.response_fill(pending.cloid, 88, D("0.2"), D(430), ends_order=True)
    await handle.settled()
    position = handle.position(TSLA)
    assert position is not None and position.size == D("0.2")
    assert tracker.stats["fills_absorbed_by_snapshot"] == 1


async def test_a_late_response_without_a_snapshot_since_still_counts(tracker: PositionTracker) -> None:
    """J-P0 when orderUpdates came first: the response's fill is applied even if no userFills ever comes."""
    handle = tracker.handle
    pending = await registered(handle, size="0.2")
    await handle.order_updates(update(pending, 89, "filled"))
    await handle.response_fill(pending.cloid, 89, D("0.2"), D(430), ends_order=True)
    await handle.settled()
    position = handle.position(TSLA)
    assert position is not None and position.size == D("0.2")


async def test_the_handle_never_clears_positions_while_a_resync_is_queued(
    nursery: trio.Nursery, wall: FakeWall
) -> None:
    """J-002: gates read the caches between the request of a resync and its application."""
    tracker = PositionTracker(wall)
    handle = tracker.handle
    assert not handle.positions
    await nursery.start(tracker.run)
    await handle.user_fills(fills(fill(86, "0.09", "430")))
    await handle.settled()
    seen_during: list[Position | None] = []

    async def resync_then_look() -> None:
        await handle.resync(
            frozenset({TSLA}), {TSLA: (D("0.09"), D(430))}, wall.ms + 1, requested_at=trio.current_time()
        )
        seen_during.append(handle.position(TSLA))  # queued, maybe not applied yet

    await resync_then_look()
    await handle.settled()
    assert seen_during[0] is not None and handle.position(TSLA) is not None


async def test_a_filled_update_before_any_fill_counts_the_filled_size_at_once(
    tracker: PositionTracker,
) -> None:
    """The order leaves the pending table only with its filled size in the position: no moment looks free."""
    handle = tracker.handle
    pending = await registered(handle, size="0.2", px="440")
    filled = update(pending, 92, "filled")
    one = attrs.evolve(filled.updates[0], sz=D(0))
    await handle.order_updates(attrs.evolve(filled, updates=(one,)))
    await handle.settled()
    position = handle.position(TSLA)
    assert handle.pending_count(TSLA) == 0
    assert position is not None and position.size == D("0.2") and position.entry_px == D(440)  # provisional
    await handle.response_fill(pending.cloid, 92, D("0.2"), D("430.5"), ends_order=True)
    await handle.user_fills(fills(fill(92, "0.2", "430.5")))
    await handle.settled()
    position = handle.position(TSLA)
    assert position is not None and position.size == D("0.2")  # still once


async def test_a_cancelled_update_counts_the_part_that_filled(tracker: PositionTracker) -> None:
    handle = tracker.handle
    pending = await registered(handle, size="0.3", px="440")
    cancelled = update(pending, 93, "canceled")
    one = attrs.evolve(cancelled.updates[0], sz=D("0.1"))  # 0.2 of 0.3 filled, the rest cancelled
    await handle.order_updates(attrs.evolve(cancelled, updates=(one,)))
    await handle.settled()
    position = handle.position(TSLA)
    assert position is not None and position.size == D("0.2")
