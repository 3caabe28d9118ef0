"""The scheduler: priority, batching, the J-004 reduce-only guard (queued and in flight), bounds, wake-up."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
import trio
import trio.testing

from hip3.core.order import Cloid, Side, Tif
from hip3.execution.scheduler import Batch, CancelRequest, Scheduler, SubmitResult
from hip3.position.model import PendingOrder

_cloids = itertools.count(1)


def order(coin: str = "xyz:TSLA", *, reduce_only: bool = False) -> PendingOrder:
    return PendingOrder(
        cloid=Cloid.from_int(next(_cloids)),
        coin=coin,
        asset=110000,
        side=Side.SELL if reduce_only else Side.BUY,
        size=Decimal("0.05"),
        limit_px=Decimal("430"),
        tif=Tif.IOC,
        reduce_only=reduce_only,
        registered_at=0.0,
    )


def cancel(oid: int, coin: str = "xyz:TSLA") -> CancelRequest:
    return CancelRequest(coin=coin, asset=110000, oid=oid, cloid=None)


async def test_cancels_first_then_reduce_only_then_new_orders_in_one_batch() -> None:
    scheduler = Scheduler()
    new_1, new_2 = order("xyz:TSLA"), order("xyz:NVDA")
    exit_1, exit_2 = order("xyz:GOLD", reduce_only=True), order("BTC", reduce_only=True)
    cancel_1, cancel_2 = cancel(1), cancel(2)
    assert scheduler.submit_new(new_1) is SubmitResult.QUEUED
    assert scheduler.submit_reduce_only(exit_1) is SubmitResult.QUEUED
    assert scheduler.submit_cancel(cancel_1) is SubmitResult.QUEUED
    assert scheduler.submit_new(new_2) is SubmitResult.QUEUED
    assert scheduler.submit_reduce_only(exit_2) is SubmitResult.QUEUED
    assert scheduler.submit_cancel(cancel_2) is SubmitResult.QUEUED

    assert await scheduler.next_batch() == Batch("cancel", (cancel_1, cancel_2), ())
    assert await scheduler.next_batch() == Batch("order", (), (exit_1, exit_2, new_1, new_2))
    assert scheduler.is_empty


async def test_a_batch_holds_what_was_queued_at_that_instant_only() -> None:
    scheduler = Scheduler()
    first = order()
    scheduler.submit_new(first)
    batch = await scheduler.next_batch()
    later = order()
    scheduler.submit_new(later)
    assert batch.orders == (first,)
    assert (await scheduler.next_batch()).orders == (later,)


async def test_an_identical_cancel_is_queued_once() -> None:
    scheduler = Scheduler()
    assert scheduler.submit_cancel(cancel(7)) is SubmitResult.QUEUED
    assert scheduler.submit_cancel(cancel(7)) is SubmitResult.QUEUED
    assert (await scheduler.next_batch()).cancels == (cancel(7),)


def test_a_cancel_needs_an_oid_or_a_cloid() -> None:
    with pytest.raises(ValueError, match="oid or a cloid"):
        CancelRequest(coin="xyz:TSLA", asset=110000, oid=None, cloid=None)


def test_orders_go_through_the_submit_of_their_kind() -> None:
    scheduler = Scheduler()
    with pytest.raises(ValueError, match="reduce-only"):
        scheduler.submit_new(order(reduce_only=True))
    with pytest.raises(ValueError, match="reduce-only"):
        scheduler.submit_reduce_only(order())


# -- J-004 ---------------------------------------------------------------------------------------------------


async def test_a_second_reduce_only_for_a_queued_market_is_a_duplicate() -> None:
    scheduler = Scheduler()
    first = order("xyz:TSLA", reduce_only=True)
    assert scheduler.submit_reduce_only(first) is SubmitResult.QUEUED
    assert scheduler.submit_reduce_only(order("xyz:TSLA", reduce_only=True)) is (
        SubmitResult.DUPLICATE_REDUCE_ONLY
    )
    other = order("xyz:GOLD", reduce_only=True)
    assert scheduler.submit_reduce_only(other) is SubmitResult.QUEUED
    assert scheduler.queued() == (0, 2, 0)
    assert (await scheduler.next_batch()).orders == (first, other)


async def test_a_reduce_only_in_flight_blocks_its_market_until_the_batch_is_done() -> None:
    scheduler = Scheduler()
    scheduler.submit_reduce_only(order("xyz:TSLA", reduce_only=True))
    in_flight = await scheduler.next_batch()
    assert scheduler.reduce_only_in_flight("xyz:TSLA")
    assert scheduler.submit_reduce_only(order("xyz:TSLA", reduce_only=True)) is (
        SubmitResult.DUPLICATE_REDUCE_ONLY
    )
    assert scheduler.submit_reduce_only(order("xyz:GOLD", reduce_only=True)) is SubmitResult.QUEUED

    scheduler.batch_done(in_flight)
    assert not scheduler.reduce_only_in_flight("xyz:TSLA")
    retry = order("xyz:TSLA", reduce_only=True)
    assert scheduler.submit_reduce_only(retry) is SubmitResult.QUEUED


async def test_a_batch_without_reduce_only_releases_nothing() -> None:
    scheduler = Scheduler()
    scheduler.submit_reduce_only(order("xyz:TSLA", reduce_only=True))
    exits = await scheduler.next_batch()
    scheduler.submit_new(order("xyz:TSLA"))
    scheduler.batch_done(await scheduler.next_batch())
    assert scheduler.reduce_only_in_flight("xyz:TSLA")
    scheduler.batch_done(exits)
    assert not scheduler.reduce_only_in_flight("xyz:TSLA")


# -- bounds --------------------------------------------------------------------------------------------------


def test_full_queues_refuse() -> None:
    scheduler = Scheduler(max_new_orders=2, max_reduce_only=1, max_cancels=1)
    assert [scheduler.submit_new(order()) for _ in range(3)] == [
        SubmitResult.QUEUED,
        SubmitResult.QUEUED,
        SubmitResult.REFUSED_FULL,
    ]
    assert scheduler.submit_reduce_only(order("xyz:TSLA", reduce_only=True)) is SubmitResult.QUEUED
    assert scheduler.submit_reduce_only(order("xyz:GOLD", reduce_only=True)) is SubmitResult.REFUSED_FULL
    assert scheduler.submit_cancel(cancel(1)) is SubmitResult.QUEUED
    assert scheduler.submit_cancel(cancel(2)) is SubmitResult.REFUSED_FULL
    assert scheduler.queued() == (1, 1, 2)


async def test_room_returns_once_a_batch_is_taken() -> None:
    scheduler = Scheduler(max_new_orders=1)
    scheduler.submit_new(order())
    assert scheduler.submit_new(order()) is SubmitResult.REFUSED_FULL
    await scheduler.next_batch()
    assert scheduler.submit_new(order()) is SubmitResult.QUEUED


def test_queues_need_room() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Scheduler(max_cancels=0)


# -- waking --------------------------------------------------------------------------------------------------


async def test_next_batch_waits_and_wakes_at_the_instant_of_a_submit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    scheduler = Scheduler()
    taken: list[tuple[float, Batch]] = []
    start = trio.current_time()

    async def consume() -> None:
        batch = await scheduler.next_batch()
        taken.append((trio.current_time() - start, batch))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.sleep(2.5)
        assert taken == []
        entry = order()
        scheduler.submit_new(entry)
    assert taken == [(2.5, Batch("order", (), (entry,)))]


async def test_next_batch_returns_at_once_when_work_is_queued(autojump_clock: trio.testing.MockClock) -> None:
    scheduler = Scheduler()
    scheduler.submit_cancel(cancel(3))
    start = trio.current_time()
    await scheduler.next_batch()
    assert trio.current_time() == start
