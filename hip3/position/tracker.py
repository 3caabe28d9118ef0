"""The position tracker: an actor that owns positions and pending orders, and a handle for everyone else.

Only the actor changes positions. The hot-path gates read the handle's caches (positions, pending orders per
market with their count) without waiting; everything else reaches the actor through one bounded
inbox. There is one pending table: `try_register_order` adds an order to it and then `send_nowait`s the
registration; when the inbox is full, `register_actor_only` sends the same registration through the awaited
path without touching the table again, and the actor skips it if the order has meanwhile left the table
(predecessor S-1: the fast path then the full path counted the order twice and froze the market).

Fills are counted once per unit, whichever source reports them first: the post response (`filled`: the
order's total size and average price) or userFills (each fill, deduplicated by tid). A userFills snapshot is
remembered, never replayed. A resync from clearinghouseState is applied by the actor in one step (the handle
never clears anything: predecessor J-002). A snapshot is not applied to a market where it could be stale: one
with a pending order, or with a fill or an ended order since the snapshot was asked for (§6 item 11). Once a
snapshot is accepted for a market, fills it already holds (streamed fills at or before its time, responses of
orders that ended before it) are recorded without moving the position again. Entry times survive resyncs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from types import MappingProxyType

import attrs
import structlog
import trio

from hip3.core.clock import WallClock
from hip3.core.order import Cloid, Side
from hip3.position.model import (
    ZERO,
    FillEffect,
    OrderFillProgress,
    OrderPhase,
    PendingOrder,
    Position,
    apply_fill,
)
from hip3.protocol.messages import Fill, OrderState, OrderUpdates, UserFills, classify_order_status

log = structlog.get_logger(__name__)

INBOX_SIZE = 1000
SEEN_TIDS_LIMIT = 100_000  # fills remembered for deduplication; the oldest are forgotten first
FILL_PROGRESS_LIMIT = 20_000  # orders whose applied fill size is remembered after they ended


# -- what the actor is told ----------------------------------------------------------------------------


@attrs.frozen
class _Register:
    order: PendingOrder


@attrs.frozen
class _Acked:
    cloid: Cloid
    oid: int


@attrs.frozen
class _ResponseFill:
    cloid: Cloid
    oid: int
    total_size: Decimal
    avg_px: Decimal
    ends_order: bool


@attrs.frozen
class _Ended:
    cloid: Cloid
    state: OrderState
    reason: str


@attrs.frozen
class _Unknown:
    cloid: Cloid


@attrs.frozen
class _Resync:
    coins: frozenset[str]  # every market the snapshot covers (one dex's): a market it omits is flat
    positions: Mapping[str, tuple[Decimal, Decimal]]  # coin -> (signed size, entry px)
    time_ms: int  # the exchange's time of the snapshot
    requested_at: float  # trio.current_time() when the snapshot was asked for


@attrs.frozen
class _Barrier:
    done: trio.Event


Message = (
    _Register | _Acked | _ResponseFill | _Ended | _Unknown | UserFills | OrderUpdates | _Resync | _Barrier
)


@attrs.frozen
class AppliedFill:
    """What one applied fill did, for the risk monitor and the journal."""

    coin: str
    side: Side
    size: Decimal
    px: Decimal
    oid: int | None
    source: str  # "response", "orderUpdates" or "userFills"
    effect: FillEffect
    tid: int | None = None  # the exchange's trade id and fee, when this is one whole userFills fill
    fee: Decimal | None = None

    @property
    def opens_from_flat(self) -> bool:
        """It opened a position in a market that was flat (all of it went into the new position)."""
        position = self.effect.position
        return self.effect.closed_size == 0 and position is not None and abs(position.size) == self.size


# -- the pending table, shared by the handle (adds) and the actor (changes, removes) ---------------------


class PendingTable:
    def __init__(self) -> None:
        self._by_cloid: dict[Cloid, PendingOrder] = {}
        self._by_oid: dict[int, PendingOrder] = {}
        self._count: Counter[str] = Counter()
        self._reduce_only: Counter[str] = Counter()

    def add(self, order: PendingOrder) -> None:
        if order.cloid in self._by_cloid:
            raise ValueError(f"order {order.cloid} is already pending")
        self._by_cloid[order.cloid] = order
        self._count[order.coin] += 1
        if order.reduce_only:
            self._reduce_only[order.coin] += 1

    def remove(self, cloid: Cloid) -> PendingOrder | None:
        order = self._by_cloid.pop(cloid, None)
        if order is None:
            return None
        if order.oid is not None:
            self._by_oid.pop(order.oid, None)
        self._count[order.coin] -= 1
        if order.reduce_only:
            self._reduce_only[order.coin] -= 1
        return order

    def set_oid(self, order: PendingOrder, oid: int) -> None:
        order.oid = oid
        self._by_oid[oid] = order

    def by_cloid(self, cloid: Cloid) -> PendingOrder | None:
        return self._by_cloid.get(cloid)

    def by_oid(self, oid: int) -> PendingOrder | None:
        return self._by_oid.get(oid)

    def count(self, coin: str) -> int:
        return self._count[coin]

    def notional(self, coin: str) -> Decimal:
        """Notional of the pending orders of `coin` that can add exposure (not reduce-only)."""
        return sum(
            (o.notional for o in self._by_cloid.values() if o.coin == coin and not o.reduce_only), ZERO
        )

    def has_reduce_only(self, coin: str) -> bool:
        return self._reduce_only[coin] > 0

    def __iter__(self) -> Iterator[PendingOrder]:
        return iter(self._by_cloid.values())


# -- the handle -----------------------------------------------------------------------------------------


class TrackerHandle:
    """What other tasks use: instant reads from the caches, and messages to the actor."""

    def __init__(
        self,
        positions: Mapping[str, Position],
        pending: PendingTable,
        inbox: trio.MemorySendChannel[Message],
        stats: Counter[str],
    ) -> None:
        self._positions = positions
        self._pending = pending
        self._inbox = inbox
        self._stats = stats

    # reads
    def position(self, coin: str) -> Position | None:
        return self._positions.get(coin)

    @property
    def positions(self) -> Mapping[str, Position]:
        return self._positions

    def pending_count(self, coin: str) -> int:
        return self._pending.count(coin)

    def pending_notional(self, coin: str) -> Decimal:
        return self._pending.notional(coin)

    def has_pending_reduce_only(self, coin: str) -> bool:
        return self._pending.has_reduce_only(coin)

    def pending_by_cloid(self, cloid: Cloid) -> PendingOrder | None:
        return self._pending.by_cloid(cloid)

    def pending_by_oid(self, oid: int) -> PendingOrder | None:
        return self._pending.by_oid(oid)

    def pending_orders(self) -> list[PendingOrder]:
        return list(self._pending)

    # registration: the fast path and the actor-only path
    def try_register_order(self, order: PendingOrder) -> bool:
        """Add the order to the caches and tell the actor.

        False: the inbox was full; the caches hold the order and the caller must finish with
        `register_actor_only(order)`, never with this method again.
        """
        self._pending.add(order)
        try:
            self._inbox.send_nowait(_Register(order))
        except trio.WouldBlock:
            self._stats["register_inbox_full"] += 1
            return False
        return True

    async def register_actor_only(self, order: PendingOrder) -> None:
        """Tell the actor about an order already in the caches; the caches are not touched again."""
        await self._inbox.send(_Register(order))

    # everything else the actor learns
    async def order_acked(self, cloid: Cloid, oid: int) -> None:
        await self._inbox.send(_Acked(cloid, oid))

    async def response_fill(
        self, cloid: Cloid, oid: int, total_size: Decimal, avg_px: Decimal, *, ends_order: bool
    ) -> None:
        await self._inbox.send(_ResponseFill(cloid, oid, total_size, avg_px, ends_order))

    async def order_ended(self, cloid: Cloid, state: OrderState, reason: str) -> None:
        await self._inbox.send(_Ended(cloid, state, reason))

    async def order_unknown(self, cloid: Cloid) -> None:
        await self._inbox.send(_Unknown(cloid))

    async def user_fills(self, frame: UserFills) -> None:
        await self._inbox.send(frame)

    async def order_updates(self, frame: OrderUpdates) -> None:
        await self._inbox.send(frame)

    async def resync(
        self,
        coins: frozenset[str],
        positions: Mapping[str, tuple[Decimal, Decimal]],
        time_ms: int,
        *,
        requested_at: float,
    ) -> None:
        """Offer the exchange's positions for `coins` as of `time_ms`, asked for at trio time requested_at."""
        await self._inbox.send(_Resync(coins, positions, time_ms, requested_at))

    async def settled(self) -> None:
        """Wait until the actor has handled everything sent before this call."""
        barrier = _Barrier(trio.Event())
        await self._inbox.send(barrier)
        await barrier.done.wait()


# -- the actor -------------------------------------------------------------------------------------------


class PositionTracker:
    def __init__(
        self,
        wall_ms: WallClock,
        *,
        inbox_size: int = INBOX_SIZE,
        restored_entry_times: Mapping[str, int] | None = None,
    ) -> None:
        self._wall_ms = wall_ms
        self._positions: dict[str, Position] = {}
        # Entry times journaled by an earlier run: a position found at start keeps its real age (time stop).
        self._restored_entry_times = dict(restored_entry_times or {})
        self._pending = PendingTable()
        self._progress: dict[int, OrderFillProgress] = {}
        self._seen_tids: dict[int, None] = {}
        self._last_activity: dict[
            str, float
        ] = {}  # trio time of the last fill applied or order ended, per market
        self._absorbed_through_ms: dict[
            str, int
        ] = {}  # exchange time up to which an accepted snapshot counted fills
        self._snapshot_accepted_at: dict[str, float] = {}
        self._ended: dict[
            Cloid, tuple[str, Side, float]
        ] = {}  # recently ended orders: market, side, trio time
        self.stats: Counter[str] = Counter()
        self.fill_listeners: list[Callable[[AppliedFill], None]] = []
        self.registered_listeners: list[Callable[[PendingOrder], None]] = []
        self.ended_listeners: list[Callable[[PendingOrder, OrderState, str], None]] = []
        # A position installed or removed by a resync (fills are told through fill_listeners).
        self.installed_listeners: list[Callable[[str, Position | None], None]] = []
        send, self._inbox = trio.open_memory_channel[Message](inbox_size)
        self.handle = TrackerHandle(MappingProxyType(self._positions), self._pending, send, self.stats)

    async def run(self, *, task_status: trio.TaskStatus[TrackerHandle] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started(self.handle)
        async for message in self._inbox:
            self._handle(message)

    def _handle(self, message: Message) -> None:
        match message:
            case _Register(order=order):
                self._on_register(order)
            case _Acked(cloid=cloid, oid=oid):
                self._on_acked(cloid, oid)
            case _ResponseFill():
                self._on_response_fill(message)
            case _Ended(cloid=cloid, state=state, reason=reason):
                self._end(cloid, state, reason)
            case _Unknown(cloid=cloid):
                self._on_unknown(cloid)
            case UserFills():
                self._on_user_fills(message)
            case OrderUpdates():
                self._on_order_updates(message)
            case _Resync():
                self._on_resync(message)
            case _Barrier(done=done):
                done.set()

    # orders
    def _on_register(self, order: PendingOrder) -> None:
        if self._pending.by_cloid(order.cloid) is not order:
            self.stats["register_skipped_already_ended"] += 1
            return
        self.stats["registered"] += 1
        for listener in self.registered_listeners:
            listener(order)

    def _on_acked(self, cloid: Cloid, oid: int) -> None:
        order = self._pending.by_cloid(cloid)
        if order is None:
            return
        self._pending.set_oid(order, oid)
        order.phase = OrderPhase.RESTING

    def _on_unknown(self, cloid: Cloid) -> None:
        order = self._pending.by_cloid(cloid)
        if order is not None:
            order.phase = OrderPhase.UNKNOWN

    def _end(self, cloid: Cloid, state: OrderState, reason: str) -> None:
        order = self._pending.remove(cloid)
        if order is None:
            return
        now = trio.current_time()
        self._last_activity[order.coin] = now
        self._ended[cloid] = (order.coin, order.side, now)
        if len(self._ended) > FILL_PROGRESS_LIMIT:
            del self._ended[next(iter(self._ended))]
        self.stats[f"ended_{state.value}"] += 1
        log.info(
            "order ended", coin=order.coin, cloid=str(cloid), oid=order.oid, state=state.value, reason=reason
        )
        for listener in self.ended_listeners:
            listener(order, state, reason)

    def _on_response_fill(self, message: _ResponseFill) -> None:
        order = self._pending.by_cloid(message.cloid)
        if order is not None and order.oid is None:
            self._pending.set_oid(order, message.oid)
        excess = self._progress_of(message.oid).excess_from_total(message.total_size, message.avg_px)
        if excess is not None:
            target = (order.coin, order.side) if order is not None else self._late_target(message.cloid)
            if target is not None:
                self._apply(*target, *excess, oid=message.oid, source="response")
        if message.ends_order:
            self._end(message.cloid, OrderState.FILLED, "filled")

    def _late_target(self, cloid: Cloid) -> tuple[str, Side] | None:
        """Where a response for an order that already ended (by orderUpdates or reconciliation) belongs, or
        None when a snapshot accepted since holds it already (or the order is not one we remember)."""
        ended = self._ended.get(cloid)
        if ended is None:
            self.stats["response_fill_unknown_order"] += 1
            return None
        coin, side, ended_at = ended
        if self._snapshot_accepted_at.get(coin, float("-inf")) > ended_at:
            self.stats["fills_absorbed_by_snapshot"] += 1
            return None
        return coin, side

    def _on_order_updates(self, frame: OrderUpdates) -> None:
        for update in frame.updates:
            order = self._pending.by_oid(update.oid)
            if order is None and update.cloid is not None:
                order = self._pending.by_cloid(update.cloid)
            if order is None:
                continue
            state, known = classify_order_status(update.status)
            if not known:
                log.warning("unknown order status, treated as terminal", status=update.status, oid=update.oid)
            if state is OrderState.OPEN:
                self._on_acked(order.cloid, update.oid)
            elif state is not OrderState.TRIGGERED:
                self._apply_filled_part(order, update.oid, update.orig_sz - update.sz, update.limit_px)
                self._end(order.cloid, state, update.status)

    def _apply_filled_part(self, order: PendingOrder, oid: int, filled: Decimal, limit_px: Decimal) -> None:
        """Count what a terminal update says was filled before the order leaves the pending table.

        Otherwise the market would look free (no pending order, fill not yet delivered) and an entry could
        pass a cap. The update carries no fill price: the limit price stands in; later reports of the same
        fill add nothing, and the next resync corrects the entry price.
        """
        if filled <= 0:
            return
        excess = self._progress_of(oid).excess_from_total(filled, limit_px)
        if excess is not None:
            self._apply(order.coin, order.side, *excess, oid=oid, source="orderUpdates")

    # fills
    def _on_user_fills(self, frame: UserFills) -> None:
        for fill in frame.fills:
            if fill.tid in self._seen_tids:
                self.stats["fills_duplicate"] += 1
            elif frame.is_snapshot:
                # Not applied: already in positions, or fetched by the reconcile after a reconnect. Nor
                # remembered: that fetch must still apply (and journal) a fill made while we were away.
                self.stats["fills_in_snapshot"] += 1
            else:
                self._remember_tid(fill.tid)
                self._on_streamed_fill(fill)

    def _on_streamed_fill(self, fill: Fill) -> None:
        excess = self._progress_of(fill.oid).excess_from_stream(fill.sz, fill.px)
        if excess is None:
            self.stats["fills_already_counted"] += 1
        elif self._held_by_accepted_snapshot(fill):
            self.stats["fills_absorbed_by_snapshot"] += 1
        else:
            whole = excess[0] == fill.sz
            self._apply(
                fill.coin,
                fill.side,
                *excess,
                oid=fill.oid,
                source="userFills",
                tid=fill.tid,
                fee=fill.fee if whole else None,
            )

    def _held_by_accepted_snapshot(self, fill: Fill) -> bool:
        """Whether a position snapshot accepted since holds this fill already (so it is not applied again).

        Judged by exchange time: the fill is older than the newest snapshot accepted for its market. A fill in
        the snapshot's own millisecond is counted: over-counting makes the gates stricter until the next
        resync; under-counting could let an entry pass a cap. For the same reason a fill on a market with a
        pending order is always counted: no snapshot is accepted for a market while it has one, so none taken
        since that order was registered holds its fills, and exchange time alone would say otherwise when
        the exchange's clock steps back (and an IOC's fill can come before its oid is known).
        """
        if self._pending.count(fill.coin):
            return False
        return fill.time_ms < self._absorbed_through_ms.get(fill.coin, -1)

    def _apply(
        self,
        coin: str,
        side: Side,
        size: Decimal,
        px: Decimal,
        *,
        oid: int | None,
        source: str,
        tid: int | None = None,
        fee: Decimal | None = None,
    ) -> None:
        now_ms = self._wall_ms()
        effect = apply_fill(self._positions.get(coin), coin, side, size, px, time_ms=now_ms)
        if effect.position is None:
            self._positions.pop(coin, None)
        else:
            self._positions[coin] = effect.position
        self._last_activity[coin] = trio.current_time()
        self.stats[f"fills_applied_{source}"] += 1
        applied = AppliedFill(coin, side, size, px, oid, source, effect, tid=tid, fee=fee)
        log.info(
            "fill applied", coin=coin, side=side.value, size=str(size), px=str(px), oid=oid, source=source
        )
        for listener in self.fill_listeners:
            listener(applied)

    def _progress_of(self, oid: int) -> OrderFillProgress:
        progress = self._progress.get(oid)
        if progress is None:
            progress = self._progress[oid] = OrderFillProgress()
            if len(self._progress) > FILL_PROGRESS_LIMIT:
                del self._progress[next(iter(self._progress))]
        return progress

    def _remember_tid(self, tid: int) -> None:
        self._seen_tids[tid] = None
        if len(self._seen_tids) > SEEN_TIDS_LIMIT:
            del self._seen_tids[next(iter(self._seen_tids))]

    # resync
    def _on_resync(self, message: _Resync) -> None:
        """Install the exchange's positions for the markets the snapshot covers, in one step.

        A market is left as it is when the snapshot may not hold everything we know: it has a pending order,
        or a fill was applied or an order ended there since the snapshot was asked for (§6 item 11).
        """
        for coin in sorted(message.coins | message.positions.keys()):
            if (
                self._pending.count(coin)
                or self._last_activity.get(coin, float("-inf")) >= message.requested_at
            ):
                self.stats["resync_skipped_busy_market"] += 1
                continue
            self._install(coin, message.positions.get(coin), message.time_ms)
            self._absorbed_through_ms[coin] = max(message.time_ms, self._absorbed_through_ms.get(coin, -1))
            self._snapshot_accepted_at[coin] = trio.current_time()
        self.stats["resyncs"] += 1

    def _install(self, coin: str, exchange: tuple[Decimal, Decimal] | None, time_ms: int) -> None:
        ours = self._positions.get(coin)
        restored_ms = self._restored_entry_times.pop(coin, None)
        if exchange is None or exchange[0] == 0:
            if ours is not None:
                self.stats["resync_removed"] += 1
                del self._positions[coin]
                self._tell_installed(coin, None)
            return
        size, entry_px = exchange
        same_side = ours is not None and (ours.size > 0) == (size > 0)
        if ours is not None and same_side:
            entry_time = ours.entry_time_ms
        else:
            entry_time = time_ms if ours is not None or restored_ms is None else restored_ms
        installed = Position(coin, size, entry_px, entry_time)
        if installed != ours:
            self.stats["resync_changed"] += 1
            self._positions[coin] = installed
            self._tell_installed(coin, installed)

    def _tell_installed(self, coin: str, position: Position | None) -> None:
        for listener in self.installed_listeners:
            listener(coin, position)
