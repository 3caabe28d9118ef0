"""The sender: takes batches from the scheduler, signs them with a fresh nonce and posts them.

Orders and cancels go over the WebSocket post channel. When the socket is down (`WsUnavailable`: nothing was
sent) exits and cancels go over HTTP /exchange instead, so an exit never waits for a reconnect (predecessor
§6 item 13); new orders are ended as rejected then, since an entry is worth less than a stale-data risk.

Every order of a post ends in a known state or is reconciled; none is forgotten:
- per-order statuses, in request order: `resting` records the oid, `filled` applies the fill from the response
  and ends the order (seed 2 P0-1), `error` ends it as rejected and emits a `RejectEvent`;
- a top-level error ends every order of the post (predecessor §6 item 9);
- when the outcome is unknown (no answer, an unreadable answer, a connection lost after sending) the orders
  are marked UNKNOWN and each is reconciled by cloid through orderStatus, retried with backoff until the
  exchange answers (§6 item 10).

Several posts may be in flight at once (`max_posts_in_flight`); while they are, new submissions gather in the
scheduler and leave together as the next batch. Logs name the action, count, nonce, transport, round trip and
outcome, never the signature.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import attrs
import structlog
import trio

from hip3.core.order import Cloid
from hip3.execution.nonce import NonceManager
from hip3.execution.rejects import is_benign_cancel_reject, is_benign_order_reject
from hip3.execution.scheduler import CancelRequest, Scheduler
from hip3.net.http import HttpClient, HttpError, HttpRateLimited, HttpRejected, HttpTransportError
from hip3.net.ws import PostOutcomeUnknown, WsConnection, WsUnavailable
from hip3.position.model import PendingOrder
from hip3.position.tracker import TrackerHandle
from hip3.protocol.actions import (
    Action,
    OrderRequest,
    cancel_action,
    cancel_by_cloid_action,
    exchange_request,
    order_action_of_wires,
    order_wire,
)
from hip3.protocol.messages import (
    ExchangeErr,
    ExchangeMalformed,
    ExchangeOk,
    ExchangeResponse,
    Filled,
    OrderError,
    OrderState,
    OrderStatus,
    Resting,
    Success,
    classify_order_status,
    parse_exchange_response,
    parse_fill_list,
)
from hip3.protocol.signing import SigningKey, sign_l1_action

log = structlog.get_logger(__name__)

WEBSOCKET_DOWN = "websocket down"
NEVER_PLACED = "never placed"
NO_STATUS = "no status for this order in the response"


@attrs.frozen
class RejectEvent:
    """An order or cancel the exchange refused; `benign` ones must not feed the HardStop."""

    coin: str
    text: str
    benign: bool


# -- what a post came to, before it is applied -----------------------------------------------------------


@attrs.frozen
class PostTiming:
    """One post: when it was signed and handed to the transport, and when its answer (or failure) came."""

    transport: str
    kind: str
    cloids: tuple[str, ...]  # of the orders it carried (none for cancels)
    sent_at: float  # Trio time
    answered_at: float


@attrs.frozen
class _Unknown:
    """It may have reached the exchange, and no readable answer came."""

    reason: str


@attrs.frozen
class _NotSent:
    """It certainly did not reach the exchange."""

    reason: str


@attrs.frozen
class _SocketDown:
    """The socket was down: nothing was sent; the HTTP path may be tried."""


PostOutcome = ExchangeResponse | _Unknown | _NotSent
Transport = Literal["ws", "http"]
_T = TypeVar("_T")


class _UnreadableOrderStatus(Exception):
    """An orderStatus answer of a shape we do not know."""


class Sender:
    def __init__(  # noqa: PLR0917 - the positional signature the entry wiring was given
        self,
        scheduler: Scheduler,
        tracker: TrackerHandle,
        ws: WsConnection,
        http: HttpClient,
        nonces: NonceManager,
        key: SigningKey,
        *,
        is_mainnet: bool,
        vault_address: str | None = None,
        account_address: str,
        reconcile_after_s: float = 0.0,
        max_posts_in_flight: int = 4,
        reconcile_retry_base_s: float = 0.5,
        reconcile_retry_max_s: float = 10.0,
    ) -> None:
        if max_posts_in_flight < 1:
            raise ValueError("max_posts_in_flight must be at least 1")
        self._scheduler = scheduler
        self._tracker = tracker
        self._ws = ws
        self._http = http
        self._nonces = nonces
        self._key = key
        self._is_mainnet = is_mainnet
        self._vault_address = vault_address
        self._account_address = account_address
        self._reconcile_after_s = reconcile_after_s
        self._reconcile_retry_base_s = reconcile_retry_base_s
        self._reconcile_retry_max_s = reconcile_retry_max_s
        self._max_posts_in_flight = max_posts_in_flight
        self._nursery: trio.Nursery | None = None
        self.reject_listeners: list[Callable[[RejectEvent], None]] = []
        self.post_listeners: list[Callable[[PostTiming], None]] = []
        self.stats: Counter[str] = Counter()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for _ in range(self._max_posts_in_flight):
                await nursery.start(self._post_batches)
            task_status.started()

    async def _post_batches(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """One of `max_posts_in_flight` loops, each posting the next batch: a waiting loop takes a submission
        in one task switch (no task to spawn per batch), and a busy one leaves it to gather for the next."""
        task_status.started()
        while True:
            batch = await self._scheduler.next_batch()
            try:
                if batch.kind == "cancel":
                    await self._send_cancels(batch.cancels)
                else:
                    await self._send_orders(batch.orders)
            finally:
                self._scheduler.batch_done(batch)

    # -- orders ----------------------------------------------------------------------------------------

    async def _send_orders(self, batch: Sequence[PendingOrder]) -> None:
        built = await self._build_wires(batch)
        if not built:
            return
        outcome = await self._post_over_ws(_order_action(built), len(built))
        if isinstance(outcome, _SocketDown):
            built = await self._end_entries_while_socket_down(built)
            if not built:
                return
            outcome = await self._post_over_http(_order_action(built), len(built))
        await self._apply_order_outcome([order for order, _ in built], outcome)

    async def _build_wires(self, orders: Sequence[PendingOrder]) -> list[tuple[PendingOrder, dict[str, Any]]]:
        """Each order with its wire form, in order; the orders none can be made of (they would fail the whole
        post) are ended instead."""
        built = []
        for order in orders:
            try:  # to_wire refuses prices and sizes OrderRequest accepts
                built.append((order, order_wire(_order_request(order))))
            except ValueError as exc:
                self.stats["orders_unbuildable"] += 1
                await self._tracker.order_ended(order.cloid, OrderState.REJECTED, f"invalid order: {exc}")
        return built

    async def _end_entries_while_socket_down(
        self, built: Sequence[tuple[PendingOrder, dict[str, Any]]]
    ) -> list[tuple[PendingOrder, dict[str, Any]]]:
        """End the new orders; return the reduce-only ones with their wire forms, which go over HTTP."""
        for order, _ in built:
            if not order.reduce_only:
                self.stats["entries_dropped_socket_down"] += 1
                await self._tracker.order_ended(order.cloid, OrderState.REJECTED, WEBSOCKET_DOWN)
        return [(order, wire) for order, wire in built if order.reduce_only]

    async def _apply_order_outcome(self, orders: Sequence[PendingOrder], outcome: PostOutcome) -> None:
        match outcome:
            case ExchangeOk(statuses=statuses):
                await self._apply_order_statuses(orders, statuses)
            case ExchangeErr(text=text):
                for order in orders:
                    await self._reject_order(order, text)
            case ExchangeMalformed(reason=reason) | _Unknown(reason=reason):
                await self._reconcile_orders(orders, reason)
            case _NotSent(reason=reason):
                for order in orders:
                    self.stats["orders_not_sent"] += 1
                    await self._tracker.order_ended(order.cloid, OrderState.REJECTED, f"not sent: {reason}")

    async def _apply_order_statuses(
        self, orders: Sequence[PendingOrder], statuses: Sequence[OrderStatus]
    ) -> None:
        if not _statuses_fit(orders, statuses):
            await self._reconcile_orders(orders, "statuses do not match the orders")
            return
        for order, status in zip(orders, statuses, strict=False):
            await self._apply_order_status(order, status)
        missing = orders[len(statuses) :]
        # Pre-validation refuses a whole batch with a single error (protocol reference §4.4): the orders
        # after it were refused with it. Without such an error, what became of them is unknown.
        batch_error = next((s.text for s in statuses if isinstance(s, OrderError)), None)
        if missing and batch_error is not None:
            for order in missing:
                await self._reject_order(order, batch_error)
        elif missing:
            await self._reconcile_orders(missing, NO_STATUS)

    async def _apply_order_status(self, order: PendingOrder, status: OrderStatus) -> None:
        match status:
            case Resting(oid=oid):
                self.stats["orders_resting"] += 1
                await self._tracker.order_acked(order.cloid, oid)
            case Filled(total_sz=total_sz, avg_px=avg_px, oid=oid):
                self.stats["orders_filled"] += 1
                await self._tracker.response_fill(order.cloid, oid, total_sz, avg_px, ends_order=True)
            case OrderError(text=text):
                await self._reject_order(order, text)
            case _:  # "success" or "waiting…": placed, but no oid to follow it by
                await self._reconcile_orders([order], f"status without an oid: {status!r}")

    async def _reject_order(self, order: PendingOrder, text: str) -> None:
        self.stats["orders_rejected"] += 1
        await self._tracker.order_ended(order.cloid, OrderState.REJECTED, text)
        self._emit_reject(RejectEvent(order.coin, text, is_benign_order_reject(text)))

    # -- cancels ---------------------------------------------------------------------------------------

    async def _send_cancels(self, cancels: Sequence[CancelRequest]) -> None:
        """Cancel by oid when it is known, else by cloid: one post for each of the two action types."""
        by_oid = [c for c in cancels if c.oid is not None]
        by_cloid = [c for c in cancels if c.oid is None]
        if by_oid:
            await self._send_cancel_group(by_oid, cancel_action((c.asset, _known(c.oid)) for c in by_oid))
        if by_cloid:
            action = cancel_by_cloid_action((c.asset, _known(c.cloid)) for c in by_cloid)
            await self._send_cancel_group(by_cloid, action)

    async def _send_cancel_group(self, cancels: Sequence[CancelRequest], action: Action) -> None:
        outcome = await self._post_over_ws(action, len(cancels))
        if isinstance(outcome, _SocketDown):
            outcome = await self._post_over_http(action, len(cancels))
        match outcome:
            case ExchangeOk(statuses=statuses) if len(statuses) <= len(cancels):
                for cancel, status in zip(cancels, statuses, strict=False):
                    await self._apply_cancel_status(cancel, status)
                await self._reconcile_cancelled(cancels[len(statuses) :])
            case ExchangeErr(text=text):
                for cancel in cancels:
                    self._emit_reject(RejectEvent(cancel.coin, text, is_benign_cancel_reject(text)))
            case _NotSent(reason=reason):
                self.stats["cancels_not_sent"] += len(cancels)
                log.warning("cancels not sent", count=len(cancels), reason=reason)
            case _:
                await self._reconcile_cancelled(cancels)

    async def _apply_cancel_status(self, cancel: CancelRequest, status: OrderStatus) -> None:
        target = self._target_cloid(cancel)
        if isinstance(status, Success):
            self.stats["cancels_done"] += 1
            if target is not None:
                await self._tracker.order_ended(target, OrderState.CANCELLED, "cancelled by us")
            return
        text = status.text if isinstance(status, OrderError) else repr(status)
        benign = is_benign_cancel_reject(text)
        self._emit_reject(RejectEvent(cancel.coin, text, benign))
        if benign:
            await self._reconcile_cancelled([cancel])  # gone: filled or cancelled; orderStatus tells which

    async def _reconcile_cancelled(self, cancels: Sequence[CancelRequest]) -> None:
        """Ask the exchange about the targets of cancels whose effect we did not learn."""
        for cancel in cancels:
            target = self._target_cloid(cancel)
            if target is not None:
                self._start_reconcile(target)

    def _target_cloid(self, cancel: CancelRequest) -> Cloid | None:
        """The cloid of the cancel's order while the tracker still holds it."""
        if cancel.cloid is not None:
            return cancel.cloid if self._tracker.pending_by_cloid(cancel.cloid) is not None else None
        order = self._tracker.pending_by_oid(_known(cancel.oid))
        return None if order is None else order.cloid

    # -- posting ---------------------------------------------------------------------------------------

    def _signed(self, action: Action) -> tuple[dict[str, Any], int]:
        nonce = self._nonces.next()
        signature = sign_l1_action(
            self._key, action, vault_address=self._vault_address, nonce=nonce, is_mainnet=self._is_mainnet
        )
        body = exchange_request(action, dict(signature), nonce=nonce, vault_address=self._vault_address)
        return body, nonce

    async def _post_over_ws(self, action: Action, count: int) -> PostOutcome | _SocketDown:
        body, nonce = self._signed(action)
        started = trio.current_time()
        outcome: PostOutcome | _SocketDown
        try:
            response = await self._ws.post("action", body)
        except WsUnavailable:
            outcome = _SocketDown()
        except PostOutcomeUnknown as exc:
            outcome = _Unknown(str(exc))
        else:
            if response.kind == "action":
                outcome = parse_exchange_response(response.payload)
            else:  # the gateway's own error: whether the action ran is not said
                outcome = _Unknown(f"post answered {response.kind}: {str(response.payload)[:200]}")
        self._log_post(
            transport="ws", action=action, count=count, nonce=nonce, started=started, outcome=outcome
        )
        return outcome

    async def _post_over_http(self, action: Action, count: int) -> PostOutcome:
        body, nonce = self._signed(action)
        started = trio.current_time()
        outcome: PostOutcome
        try:
            outcome = parse_exchange_response(await self._http.exchange(body, batch_length=count))
        except HttpError as error:
            outcome = _http_failure(error)
        self._log_post(
            transport="http", action=action, count=count, nonce=nonce, started=started, outcome=outcome
        )
        return outcome

    def _log_post(
        self,
        *,
        transport: Transport,
        action: Action,
        count: int,
        nonce: int,
        started: float,
        outcome: PostOutcome | _SocketDown,
    ) -> None:
        self.stats[f"posts_{transport}"] += 1
        now = trio.current_time()
        timing = PostTiming(transport, action["type"], _cloids_of(action), started, now)
        for listener in self.post_listeners:
            listener(timing)
        log.info(
            "post",
            kind=action["type"],
            count=count,
            nonce=nonce,
            transport=transport,
            round_trip_ms=round((now - started) * 1000, 3),
            outcome=_describe(outcome),
        )

    # -- reconciliation ----------------------------------------------------------------------------------

    async def _reconcile_orders(self, orders: Sequence[PendingOrder], reason: str) -> None:
        log.warning("order outcome unknown, reconciling", count=len(orders), reason=reason)
        for order in orders:
            self.stats["orders_unknown"] += 1
            await self._tracker.order_unknown(order.cloid)
            self._start_reconcile(order.cloid)

    def _start_reconcile(self, cloid: Cloid) -> None:
        if self._nursery is None:
            raise RuntimeError("the sender is not running")
        self._nursery.start_soon(self._reconcile, cloid)

    async def _reconcile(self, cloid: Cloid) -> None:
        """Ask orderStatus by cloid until the exchange answers; the order stays pending until then."""
        await trio.sleep(self._reconcile_after_s)
        delay = self._reconcile_retry_base_s
        request = {"type": "orderStatus", "user": self._account_address, "oid": cloid.value}
        while self._tracker.pending_by_cloid(cloid) is not None:
            try:
                await self._apply_reconciled(cloid, _read_order_status(await self._http.info(request)))
                return
            except (HttpError, _UnreadableOrderStatus) as exc:
                self.stats["reconcile_failures"] += 1
                log.warning("reconcile failed, retrying", cloid=str(cloid), error=str(exc), retry_in_s=delay)
            await trio.sleep(delay)
            delay = min(delay * 2, self._reconcile_retry_max_s)

    async def _apply_reconciled(self, cloid: Cloid, found: tuple[int, str] | None) -> None:
        if found is None:
            self.stats["reconciled_never_placed"] += 1
            await self._tracker.order_ended(cloid, OrderState.REJECTED, NEVER_PLACED)
            return
        oid, status = found
        state, known = classify_order_status(status)
        if not known:
            log.warning("unknown order status, treated as terminal", status=status, oid=oid)
        self.stats[f"reconciled_{state.value}"] += 1
        if state in (OrderState.OPEN, OrderState.TRIGGERED):
            await self._tracker.order_acked(cloid, oid)
        else:
            # orderStatus has no fill price, so fetch the order's fills before ending it: otherwise the market
            # would look free (no pending order, no position) until userFills came, and an entry could pass
            # the cap. The tracker counts each fill once by tid, however often it is told.
            await self._apply_fills_of(oid)
            await self._tracker.order_ended(cloid, state, f"reconciled: {status}")

    async def _apply_fills_of(self, oid: int) -> None:
        answer = await self._http.info({"type": "userFills", "user": self._account_address})
        every_fill = parse_fill_list(self._account_address, answer)
        ours = tuple(fill for fill in every_fill.fills if fill.oid == oid)
        if ours:
            await self._tracker.user_fills(attrs.evolve(every_fill, fills=ours))
            await self._tracker.settled()

    # -- listeners ---------------------------------------------------------------------------------------

    def _emit_reject(self, event: RejectEvent) -> None:
        self.stats["rejects_benign" if event.benign else "rejects_alarming"] += 1
        log.info("reject", coin=event.coin, text=event.text, benign=event.benign)
        for listener in self.reject_listeners:
            listener(event)


# -- helpers -------------------------------------------------------------------------------------------------


def _order_request(order: PendingOrder) -> OrderRequest:
    return OrderRequest(
        asset=order.asset,
        side=order.side,
        price=order.limit_px,
        size=order.size,
        tif=order.tif,
        reduce_only=order.reduce_only,
        cloid=order.cloid,
    )


def _order_action(built: Sequence[tuple[PendingOrder, dict[str, Any]]]) -> Action:
    """The order action of orders whose wire forms `_build_wires` made."""
    return order_action_of_wires([wire for _, wire in built])


def _cloids_of(action: Action) -> tuple[str, ...]:
    return tuple(str(order["c"]) for order in action.get("orders", ()) if "c" in order)


def _statuses_fit(orders: Sequence[PendingOrder], statuses: Sequence[OrderStatus]) -> bool:
    """No more statuses than orders, and every cloid a status names is that of its order."""
    if len(statuses) > len(orders):
        return False
    for order, status in zip(orders, statuses, strict=False):
        if isinstance(status, Resting | Filled) and status.cloid not in (None, order.cloid):
            return False
    return True


def _http_failure(error: HttpError) -> PostOutcome:
    """What a failed /exchange call means for the action it carried (see hip3.net.http)."""
    if isinstance(error, HttpRejected):  # the exchange read the body and refused it
        return ExchangeErr(f"HTTP {error.status}: {error.text.strip()[:200]}")
    if isinstance(error, HttpRateLimited):
        return _NotSent(str(error))
    if isinstance(error, HttpTransportError) and not error.may_have_been_sent:
        return _NotSent(str(error))
    return _Unknown(str(error))  # sent and dropped, timed out, 5xx after forwarding, unreadable 2xx


def _read_order_status(body: Any) -> tuple[int, str] | None:
    """(oid, status) from an orderStatus answer; None when the exchange never saw the order."""
    if not isinstance(body, Mapping):
        raise _UnreadableOrderStatus(f"orderStatus answer is not an object: {str(body)[:100]}")
    if body.get("status") == "unknownOid":
        return None
    try:
        record = body["order"]
        oid, status = record["order"]["oid"], record["status"]
    except (KeyError, TypeError) as exc:
        raise _UnreadableOrderStatus(f"orderStatus answer lacks {exc}") from None
    if type(oid) is not int or type(status) is not str:
        raise _UnreadableOrderStatus(f"orderStatus answer has oid {oid!r} and status {status!r}")
    return oid, status


def _known(value: _T | None) -> _T:
    if value is None:
        raise ValueError("expected a value")
    return value


def _describe(outcome: PostOutcome | _SocketDown) -> str:
    match outcome:
        case ExchangeOk(statuses=statuses):
            return f"ok ({len(statuses)} statuses)"
        case ExchangeErr(text=text):
            return f"err: {text[:120]}"
        case ExchangeMalformed(reason=reason):
            return f"malformed: {reason}"
        case _Unknown(reason=reason):
            return f"unknown: {reason}"
        case _NotSent(reason=reason):
            return f"not sent: {reason}"
        case _SocketDown():
            return WEBSOCKET_DOWN
