"""The order scheduler: bounded queues of cancels, reduce-only and new orders, drained in batches.

Event-driven, with no tick: `next_batch` returns as soon as something is queued (the predecessor's 20–100 ms
tick was its main latency cost), and whatever arrived while the previous post was in flight goes out together.
Priority is cancels, then reduce-only orders, then new orders, and a batch holds one action type (one post).

A market has at most one reduce-only order queued or in flight (predecessor J-004: a re-fired exit signal sent
a second flatten that the exchange rejected). The in-flight marker is held from `next_batch` until
`batch_done`, which the sender calls on every outcome so a rejected or failed exit can be retried.
A reduce-only order that is resting on the exchange after its post is the tracker's to report
(`has_pending_reduce_only`), not the scheduler's.

Consumers (the sender's posting loops) call `next_batch`; any task may submit. A submission wakes one
waiting consumer, not all of them. Everything is synchronous except the wait for work, so no submit can
interleave with taking a batch.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Literal

import attrs
import trio

from hip3.core.order import Cloid
from hip3.position.model import PendingOrder


@attrs.frozen
class CancelRequest:
    coin: str
    asset: int
    oid: int | None
    cloid: Cloid | None

    def __attrs_post_init__(self) -> None:
        if self.oid is None and self.cloid is None:
            raise ValueError("a cancel needs an oid or a cloid")


@attrs.frozen
class Batch:
    kind: Literal["cancel", "order"]
    cancels: tuple[CancelRequest, ...]
    orders: tuple[PendingOrder, ...]

    @property
    def size(self) -> int:
        return len(self.cancels) + len(self.orders)


class SubmitResult(enum.Enum):
    QUEUED = "queued"
    REFUSED_FULL = "refused_full"
    DUPLICATE_REDUCE_ONLY = "duplicate_reduce_only"


class Scheduler:
    def __init__(
        self, *, max_new_orders: int = 64, max_reduce_only: int = 256, max_cancels: int = 256
    ) -> None:
        if min(max_new_orders, max_reduce_only, max_cancels) < 1:
            raise ValueError("every queue needs room for at least one entry")
        self._max_new = max_new_orders
        self._max_reduce_only = max_reduce_only
        self._max_cancels = max_cancels
        self._cancels: dict[CancelRequest, None] = {}  # insertion-ordered; an identical cancel is queued once
        self._reduce_only: dict[str, PendingOrder] = {}  # by market: one at a time
        self._new: deque[PendingOrder] = deque()
        self._reduce_only_in_flight: set[str] = set()
        self._work_arrived = trio.lowlevel.ParkingLot()

    # -- producers -------------------------------------------------------------------------------------

    def submit_new(self, order: PendingOrder) -> SubmitResult:
        """Queue an entry; REFUSED_FULL means it will not be sent and the caller ends it in the tracker."""
        if order.reduce_only:
            raise ValueError("a reduce-only order goes through submit_reduce_only")
        if len(self._new) >= self._max_new:
            return SubmitResult.REFUSED_FULL
        self._new.append(order)
        self._work_arrived.unpark()
        return SubmitResult.QUEUED

    def submit_reduce_only(self, order: PendingOrder) -> SubmitResult:
        if not order.reduce_only:
            raise ValueError("submit_reduce_only takes reduce-only orders")
        if order.coin in self._reduce_only or order.coin in self._reduce_only_in_flight:
            return SubmitResult.DUPLICATE_REDUCE_ONLY
        if len(self._reduce_only) >= self._max_reduce_only:
            return SubmitResult.REFUSED_FULL
        self._reduce_only[order.coin] = order
        self._work_arrived.unpark()
        return SubmitResult.QUEUED

    def submit_cancel(self, cancel: CancelRequest) -> SubmitResult:
        if cancel in self._cancels:
            return SubmitResult.QUEUED
        if len(self._cancels) >= self._max_cancels:
            return SubmitResult.REFUSED_FULL
        self._cancels[cancel] = None
        self._work_arrived.unpark()
        return SubmitResult.QUEUED

    # -- the consumer ----------------------------------------------------------------------------------

    async def next_batch(self) -> Batch:
        """Wait until something is queued; take everything of the highest priority queued now."""
        while self.is_empty:
            await self._work_arrived.park()
        batch = self._take_batch()
        if not self.is_empty:  # a submission wakes one consumer: what this one left wakes the next
            self._work_arrived.unpark()
        return batch

    def _take_batch(self) -> Batch:
        if self._cancels:
            cancels = tuple(self._cancels)
            self._cancels.clear()
            return Batch("cancel", cancels, ())
        reduce_only = tuple(self._reduce_only.values())
        self._reduce_only.clear()
        self._reduce_only_in_flight.update(order.coin for order in reduce_only)
        new = tuple(self._new)
        self._new.clear()
        return Batch("order", (), reduce_only + new)

    def batch_done(self, batch: Batch) -> None:
        """Release the batch's reduce-only markets, whatever the outcome of its post."""
        for order in batch.orders:
            if order.reduce_only:
                self._reduce_only_in_flight.discard(order.coin)

    # -- reads -----------------------------------------------------------------------------------------

    @property
    def is_empty(self) -> bool:
        return not (self._cancels or self._reduce_only or self._new)

    def queued(self) -> tuple[int, int, int]:
        """(cancels, reduce-only, new) waiting to be sent."""
        return len(self._cancels), len(self._reduce_only), len(self._new)

    def reduce_only_in_flight(self, coin: str) -> bool:
        return coin in self._reduce_only_in_flight
