"""Reconciliation after a reconnect: merge what the exchange did while we were not listening.

The exchange does not replay order or fill events on resubscribe (peers §3.1), so after the socket is LIVE
again, and before entries resume, the bot asks and merges, in this order:

1. openOrders for every dex traded (without `dex` HIP-3 orders are not listed, protocol reference §6.6).
   - An order the tracker holds as resting (acknowledged, with an oid) that the exchange no longer lists has
     ended: filled, cancelled (for example by the dead-man switch) or both in part. Its fills come in step 2;
     the order is ended as filled when the fills fetched cover its size, else as cancelled. Orders still in
     flight (queued, sent, outcome unknown) are left to the sender, and orders acknowledged just before the
     request (`RECENT_ORDER_GRACE_S`) are left to the stream, in case the answer is a little behind.
   - An open order the tracker does not know (by cloid or oid: placed before a restart, or by hand) is
     reported and handed to `cancel_unknown`. The bot must not leave orders resting that nothing tracks; an
     account traded by this bot is assumed to be traded by nothing else.
2. userFillsByTime from `since_ms` (the time of the last fill we saw) minus `FILL_OVERLAP_MS`, page by page,
   handed to the tracker as stream messages: it deduplicates by tid, so the overlap counts nothing twice.
   openOrders is asked first, so a fill that took an order off the book is in this answer.
3. Positions: `Resyncer.once()` (clearinghouseState per dex), merged by the tracker's actor, which keeps
   markets with pending orders or fresh activity as they are.

Any request that fails raises: the caller retries the whole reconcile and keeps entries stopped meanwhile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs
import structlog
import trio

from hip3.core.order import Cloid, Side
from hip3.position.model import OrderPhase, PendingOrder
from hip3.position.resync import Resyncer
from hip3.position.tracker import TrackerHandle
from hip3.protocol.messages import Fill, OrderState, UserFills, parse_fill_list
from hip3.protocol.responses import PARSE_ERRORS, cloid, decimal, integer, mapping, text

log = structlog.get_logger(__name__)

InfoCall = Callable[[Mapping[str, Any]], Awaitable[Any]]
FILL_OVERLAP_MS = 5_000  # asked again before the last fill seen: fills stamped out of order are not missed
FILLS_PAGE_LIMIT = 2_000  # the most one userFillsByTime answer holds (protocol reference §6.7)
RECENT_ORDER_GRACE_S = 2.0


@attrs.frozen
class OpenOrder:
    """One entry of an openOrders answer."""

    coin: str
    side: Side
    limit_px: Decimal
    size: Decimal  # remaining
    oid: int
    cloid: Cloid | None
    reduce_only: bool


CancelUnknown = Callable[[Sequence[OpenOrder]], Awaitable[None]]


@attrs.frozen
class ReconcileReport:
    ended: tuple[tuple[Cloid, OrderState], ...]  # orders of ours the exchange no longer lists
    unknown: tuple[OpenOrder, ...]  # open at the exchange, unknown to the tracker; handed to cancel_unknown
    fills_fetched: int  # what userFillsByTime returned (the tracker ignores those it has seen)
    last_fill_ms: int | None  # the newest fill fetched: the next reconcile's since_ms
    malformed: int  # entries of either answer that could not be read


async def reconcile(
    tracker: TrackerHandle,
    info: InfoCall,
    user: str,
    dexes: Iterable[str],
    resyncer: Resyncer,
    *,
    since_ms: int,
    cancel_unknown: CancelUnknown,
) -> ReconcileReport:
    """Merge the exchange's open orders, fills since `since_ms` and positions into the tracker."""
    requested_at = trio.current_time()
    resting = _settled_resting_orders(tracker, requested_at)
    listed, unreadable_orders = await _open_orders(info, user, dexes)
    fills, unreadable_fills = await _fills_since(info, user, since_ms - FILL_OVERLAP_MS)
    for page in fills:
        await tracker.user_fills(page)
    await tracker.settled()
    every_fill = [fill for page in fills for fill in page.fills]
    ended = await _end_unlisted(tracker, resting, listed, every_fill)
    unknown = tuple(order for order in listed if _is_unknown(tracker, order))
    if unknown:
        log.warning("open orders unknown to the tracker, cancelling", oids=[order.oid for order in unknown])
        await cancel_unknown(unknown)
    await resyncer.once()
    report = ReconcileReport(
        ended=ended,
        unknown=unknown,
        fills_fetched=len(every_fill),
        last_fill_ms=max((fill.time_ms for fill in every_fill), default=None),
        malformed=unreadable_orders + unreadable_fills,
    )
    log.info("reconciled", ended=len(ended), unknown=len(unknown), fills=len(every_fill))
    return report


# -- open orders -------------------------------------------------------------------------------------------


def _settled_resting_orders(tracker: TrackerHandle, now: float) -> list[PendingOrder]:
    """Orders the exchange must list if they are still open: acknowledged, and not just now."""
    return [
        order
        for order in tracker.pending_orders()
        if order.phase is OrderPhase.RESTING
        and order.oid is not None
        and order.registered_at <= now - RECENT_ORDER_GRACE_S
    ]


async def _open_orders(info: InfoCall, user: str, dexes: Iterable[str]) -> tuple[list[OpenOrder], int]:
    listed: list[OpenOrder] = []
    unreadable = 0
    for dex in dexes:
        request: dict[str, Any] = {"type": "openOrders", "user": user}
        if dex:
            request["dex"] = dex
        answer = await info(request)
        entries = answer if isinstance(answer, list) else []
        unreadable += 0 if isinstance(answer, list) else 1
        for entry in entries:
            order = _open_order(entry)
            if order is None:
                unreadable += 1
            else:
                listed.append(order)
    return listed, unreadable


def _open_order(raw: Any) -> OpenOrder | None:
    try:
        entry = mapping(raw, "open order")
        return OpenOrder(
            coin=text(entry, "coin"),
            side=Side.from_wire(entry["side"]),
            limit_px=decimal(entry, "limitPx"),
            size=decimal(entry, "sz"),
            oid=integer(entry, "oid"),
            cloid=cloid(entry),
            reduce_only=entry.get("reduceOnly") is True,
        )
    except PARSE_ERRORS as exc:
        log.warning("unreadable open order", error=str(exc))
        return None


def _is_unknown(tracker: TrackerHandle, order: OpenOrder) -> bool:
    if order.cloid is not None and tracker.pending_by_cloid(order.cloid) is not None:
        return False
    return tracker.pending_by_oid(order.oid) is None


async def _end_unlisted(
    tracker: TrackerHandle,
    resting: Sequence[PendingOrder],
    listed: Sequence[OpenOrder],
    fills: Sequence[Fill],
) -> tuple[tuple[Cloid, OrderState], ...]:
    listed_oids = {order.oid for order in listed}
    ended = []
    for order in resting:
        if order.oid in listed_oids:
            continue
        filled = sum((fill.sz for fill in fills if fill.oid == order.oid), Decimal(0))
        state = OrderState.FILLED if filled >= order.size else OrderState.CANCELLED
        await tracker.order_ended(order.cloid, state, "reconcile: no longer open at the exchange")
        ended.append((order.cloid, state))
    await tracker.settled()
    return tuple(ended)


# -- fills ---------------------------------------------------------------------------------------------------


async def _fills_since(info: InfoCall, user: str, start_ms: int) -> tuple[list[UserFills], int]:
    """userFillsByTime from `start_ms`, a page at a time while pages come back full."""
    pages: list[UserFills] = []
    unreadable = 0
    while True:
        answer = await info({"type": "userFillsByTime", "user": user, "startTime": start_ms})
        page = parse_fill_list(user, answer)
        pages.append(page)
        unreadable += page.malformed
        page_was_full = isinstance(answer, list) and len(answer) >= FILLS_PAGE_LIMIT
        newest = max((fill.time_ms for fill in page.fills), default=start_ms)
        if not page_was_full or newest <= start_ms:
            return pages, unreadable
        start_ms = newest  # the boundary millisecond is asked again; the tracker drops repeated tids
