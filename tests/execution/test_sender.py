"""The sender against the in-memory exchange, under MockClock, with the tracker actor running.

A `RecordingHandle` notes every call the sender makes to the tracker with its virtual time, so the tests can
say exactly what was applied, in which order and when. userFills frames are routed to the tracker by the
tests themselves, when each test wants them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal as D
from random import Random
from typing import Any

import attrs
import httpx
import trio
import trio.testing

from hip3.core.clock import trio_wall_clock
from hip3.core.order import Cloid, Side, Tif
from hip3.execution.nonce import NonceManager
from hip3.execution.scheduler import CancelRequest, Scheduler, SubmitResult
from hip3.execution.sender import NEVER_PLACED, WEBSOCKET_DOWN, RejectEvent, Sender
from hip3.net.http import HttpClient
from hip3.net.ws import ConnectionState, WsConnection, WsSettings
from hip3.position.model import OrderPhase, PendingOrder
from hip3.position.tracker import PositionTracker, TrackerHandle
from hip3.protocol.messages import OrderState, UserFills
from hip3.protocol.signing import SigningKey
from hip3.sim.harness import BASE_URL, WALL_START_MS, MemorySim, run_memory_sim
from tests.sim_integration import FUNDING, KEY, OTHER_KEY, TRADER, TSLA, TSLA_ASSET, quiet_scenario

MIN_VALUE = "Order must have minimum value of $10."
NO_MATCH = "Order could not immediately match against any resting orders."
MARGIN = "Insufficient margin to place order."
_cloids = itertools.count(1)

Call = tuple[float, str, Cloid, Any]


class RecordingHandle(TrackerHandle):
    """The tracker's handle, noting each call the sender makes with its virtual time."""

    def __init__(self, handle: TrackerHandle, start: float) -> None:
        super().__init__(handle._positions, handle._pending, handle._inbox, handle._stats)
        self.start = start
        self.calls: list[Call] = []

    def _note(self, name: str, cloid: Cloid, detail: Any) -> None:
        self.calls.append((trio.current_time() - self.start, name, cloid, detail))

    async def order_acked(self, cloid: Cloid, oid: int) -> None:
        self._note("acked", cloid, oid)
        await super().order_acked(cloid, oid)

    async def response_fill(
        self, cloid: Cloid, oid: int, total_size: D, avg_px: D, *, ends_order: bool
    ) -> None:
        self._note("filled", cloid, (total_size, avg_px, ends_order))
        await super().response_fill(cloid, oid, total_size, avg_px, ends_order=ends_order)

    async def order_ended(self, cloid: Cloid, state: OrderState, reason: str) -> None:
        self._note("ended", cloid, (state, reason))
        await super().order_ended(cloid, state, reason)

    async def order_unknown(self, cloid: Cloid) -> None:
        self._note("unknown", cloid, None)
        await super().order_unknown(cloid)

    def of(self, order: PendingOrder) -> list[tuple[float, str, Any]]:
        return [(at, name, detail) for at, name, cloid, detail in self.calls if cloid == order.cloid]


@attrs.define
class Rig:
    sim: MemorySim
    tracker: RecordingHandle
    tracker_stats: Any
    ws: WsConnection
    http: HttpClient
    scheduler: Scheduler
    sender: Sender
    fills: trio.MemoryReceiveChannel[UserFills]
    rejects: list[RejectEvent]
    start: float

    def now(self) -> float:
        return trio.current_time() - self.start

    def order(
        self, side: Side, size: str, px: str, tif: Tif = Tif.IOC, *, reduce_only: bool = False
    ) -> PendingOrder:
        """A registered order, as the entry gates hand it over."""
        order = PendingOrder(
            cloid=Cloid.from_int(next(_cloids)),
            coin=TSLA,
            asset=TSLA_ASSET,
            side=side,
            size=D(size),
            limit_px=D(px),
            tif=tif,
            reduce_only=reduce_only,
            registered_at=trio.current_time(),
        )
        assert self.tracker.try_register_order(order)
        return order

    def submit(self, *orders: PendingOrder) -> None:
        for order in orders:
            submit = self.scheduler.submit_reduce_only if order.reduce_only else self.scheduler.submit_new
            assert submit(order) is SubmitResult.QUEUED

    async def place(self, side: Side, size: str, px: str) -> PendingOrder:
        """Register and submit an IOC order, and wait until it has ended."""
        order = self.order(side, size, px)
        self.submit(order)
        await self.until_ended(order)
        return order

    async def rest(self) -> PendingOrder:
        """Register and submit a GTC buy below the book, and wait until the exchange has acked it."""
        order = self.order(Side.BUY, "0.05", "420", Tif.GTC)
        self.submit(order)
        await self.until(lambda: self.tracker.pending_by_cloid(order.cloid).oid is not None)  # type: ignore[union-attr]
        return order

    async def until(self, done: Callable[[], bool]) -> None:
        """Poll tracker state; the times asserted come from the recorded calls, not from this poll."""
        while not done():  # noqa: ASYNC110 - the tracker offers no event for "this order ended"
            await trio.sleep(0.001)
        await self.tracker.settled()

    async def until_ended(self, *orders: PendingOrder) -> None:
        await self.until(lambda: all(self.tracker.pending_by_cloid(o.cloid) is None for o in orders))

    async def route_fills_of(self, oid: int) -> None:
        """Route userFills frames to the tracker until one carries a fill of `oid`."""
        while True:
            frame = await self.fills.receive()
            await self.tracker.user_fills(frame)
            if not frame.is_snapshot and any(fill.oid == oid for fill in frame.fills):
                await self.tracker.settled()
                return

    async def order_status(self, order: PendingOrder) -> Any:
        return await self.http.info({"type": "orderStatus", "user": TRADER, "oid": order.cloid.value})

    def exchange_position(self) -> D:
        return D(self.sim.exchange.audit(TRADER)["markets"][TSLA]["position"])  # type: ignore[index]


async def start_rig(
    nursery: trio.Nursery,
    *,
    key: SigningKey = KEY,
    http_transport: Callable[[MemorySim], httpx.AsyncBaseTransport] | None = None,
) -> Rig:
    sim: MemorySim = await nursery.start(
        lambda task_status: run_memory_sim(quiet_scenario(), fund=FUNDING, task_status=task_status)
    )
    start = trio.current_time()
    wall_ms = trio_wall_clock(WALL_START_MS)
    actor = PositionTracker(wall_ms)
    handle: TrackerHandle = await nursery.start(actor.run)
    tracker = RecordingHandle(handle, start)
    ws = WsConnection(sim.ws_server.connect, WsSettings(reconnect_jitter=0))
    ws.subscribe({"type": "userFills", "user": key.address})
    fills = ws.frames(UserFills)
    await nursery.start(ws.run)
    await ws.wait_live()
    transport = sim.http_transport if http_transport is None else http_transport(sim)
    http = HttpClient(BASE_URL, transport=transport, random=Random(0))
    scheduler = Scheduler()
    sender = Sender(
        scheduler,
        tracker,
        ws,
        http,
        NonceManager(wall_ms),
        key,
        is_mainnet=False,
        account_address=key.address,
    )
    rejects: list[RejectEvent] = []
    sender.reject_listeners.append(rejects.append)
    await nursery.start(sender.run)
    return Rig(sim, tracker, actor.stats, ws, http, scheduler, sender, fills, rejects, start)


async def best_ask(rig: Rig) -> tuple[D, D]:
    book = await rig.http.info({"type": "l2Book", "coin": TSLA})
    level = book["levels"][1][0]
    return D(level["px"]), D(level["sz"])


# -- fills from the post response ----------------------------------------------------------------------------


async def test_an_ioc_filled_through_the_response_counts_once_when_user_fills_repeat_it(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery)
    entry = await rig.place(Side.BUY, "0.05", "440")

    [(_, name, (size, avg_px, ends))] = rig.tracker.of(entry)
    assert (name, size, ends) == ("filled", D("0.05"), True)
    position = rig.tracker.position(TSLA)
    assert position is not None and (position.size, position.entry_px) == (D("0.05"), avg_px)
    assert rig.tracker.pending_count(TSLA) == 0

    oid = (await rig.order_status(entry))["order"]["order"]["oid"]
    await rig.route_fills_of(oid)
    position = rig.tracker.position(TSLA)
    assert position is not None and (position.size, position.entry_px) == (D("0.05"), avg_px)
    assert rig.exchange_position() == D("0.05")
    assert rig.tracker_stats["fills_applied_response"] == 1
    assert rig.tracker_stats["fills_applied_userFills"] == 0
    assert rig.rejects == []


async def test_a_batch_answered_filled_error_resting_leaves_only_the_resting_order_pending(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery)
    filled = rig.order(Side.BUY, "0.05", "440")
    too_small = rig.order(Side.BUY, "0.01", "440")
    resting = rig.order(Side.BUY, "0.05", "420", Tif.GTC)
    rig.submit(filled, too_small, resting)
    await rig.until_ended(filled, too_small)

    assert rig.sender.stats["posts_ws"] == 1
    assert [name for _, name, _ in rig.tracker.of(filled)] == ["filled"]
    assert rig.tracker.of(too_small) == [(0.0, "ended", (OrderState.REJECTED, MIN_VALUE))]
    [(_, name, oid)] = rig.tracker.of(resting)
    assert name == "acked"
    pending = rig.tracker.pending_by_cloid(resting.cloid)
    assert pending is not None and pending.oid == oid and pending.phase is OrderPhase.RESTING
    assert (await rig.order_status(resting))["order"]["order"]["oid"] == oid
    assert rig.tracker.pending_count(TSLA) == 1
    assert rig.tracker.pending_notional(TSLA) == D("0.05") * D("420")
    assert rig.rejects == [RejectEvent(TSLA, MIN_VALUE, benign=True)]


# -- errors --------------------------------------------------------------------------------------------------


async def test_a_top_level_error_ends_every_order_of_the_post(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery, key=OTHER_KEY)  # signs for an account that does not exist
    orders = [rig.order(Side.BUY, "0.05", "440"), rig.order(Side.BUY, "0.05", "420", Tif.GTC)]
    rig.submit(*orders)
    await rig.until_ended(*orders)

    text = f"User or API Wallet {OTHER_KEY.address} does not exist."
    for order in orders:
        assert rig.tracker.of(order) == [(0.0, "ended", (OrderState.REJECTED, text))]
    assert rig.rejects == [RejectEvent(TSLA, text, benign=False)] * 2
    assert rig.tracker.pending_count(TSLA) == 0


async def test_benign_and_alarming_rejections(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery)
    await rig.place(Side.BUY, "0.05", "400")  # finds nothing
    rig.sim.faults.reject_next_orders(1, MARGIN)
    await rig.place(Side.BUY, "0.05", "440")  # refused

    assert rig.rejects == [RejectEvent(TSLA, NO_MATCH, benign=True), RejectEvent(TSLA, MARGIN, benign=False)]
    assert (rig.sender.stats["rejects_benign"], rig.sender.stats["rejects_alarming"]) == (1, 1)
    assert rig.tracker.position(TSLA) is None


async def test_an_order_the_wire_cannot_carry_is_rejected_and_the_rest_of_its_batch_is_sent(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery)
    too_fine = rig.order(Side.BUY, "0.05", "440.123456789")  # more decimals than the wire takes
    entry = rig.order(Side.BUY, "0.05", "440")
    rig.submit(too_fine, entry)
    await rig.until_ended(too_fine, entry)

    [(at, name, (state, reason))] = rig.tracker.of(too_fine)
    assert (at, name, state) == (0.0, "ended", OrderState.REJECTED)
    assert reason.startswith("invalid order: ") and "more than 8 decimals" in reason
    assert [name for _, name, _ in rig.tracker.of(entry)] == ["filled"]
    assert (rig.sender.stats["orders_unbuildable"], rig.sender.stats["posts_ws"]) == (1, 1)


# -- unknown outcomes ----------------------------------------------------------------------------------------


async def test_a_dropped_post_response_is_reconciled_by_order_status(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery)
    ask_px, ask_sz = await best_ask(rig)
    partial = rig.order(Side.BUY, str(ask_sz + D("0.5")), str(ask_px))  # takes the top level, rest cancelled
    filled = rig.order(Side.BUY, "0.05", "440")
    resting = rig.order(Side.BUY, "0.05", "420", Tif.GTC)
    finds_nothing = rig.order(Side.BUY, "0.05", "400")
    rig.sim.faults.drop_post_responses(1)
    sent_at = rig.now()
    rig.submit(partial, filled, resting, finds_nothing)
    await rig.until_ended(partial, filled, finds_nothing)

    timeout = sent_at + 5.0  # WsSettings.post_timeout_s
    assert rig.tracker.of(partial) == [
        (timeout, "unknown", None),
        (timeout, "ended", (OrderState.CANCELLED, "reconciled: canceled")),
    ]
    assert rig.tracker.of(filled) == [
        (timeout, "unknown", None),
        (timeout, "ended", (OrderState.FILLED, "reconciled: filled")),
    ]
    assert rig.tracker.of(finds_nothing) == [
        (timeout, "unknown", None),
        (timeout, "ended", (OrderState.REJECTED, "reconciled: iocCancelRejected")),
    ]
    [_, (at, name, oid)] = rig.tracker.of(resting)
    assert (at, name) == (timeout, "acked")
    assert rig.tracker.pending_orders() == [rig.tracker.pending_by_oid(oid)]
    assert rig.sender.stats["orders_unknown"] == 4

    # The reconcile fetched the fills before ending the orders: no moment where the market looks free.
    position = rig.tracker.position(TSLA)
    assert position is not None and position.size == ask_sz + D("0.05") == rig.exchange_position()
    # The same fills arriving by userFills later are counted once.
    filled_oid = (await rig.order_status(filled))["order"]["order"]["oid"]
    await rig.route_fills_of(filled_oid)
    position = rig.tracker.position(TSLA)
    assert position is not None and position.size == ask_sz + D("0.05") == rig.exchange_position()


class FailingTransport(httpx.AsyncBaseTransport):
    """The simulator's HTTP, except: the first /exchange drops the connection (after or instead of
    delivering it), and the first orderStatus answers 400."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, deliver: bool) -> None:
        self._inner = inner
        self._deliver = deliver
        self.exchange_failures = 1
        self.status_failures = 1

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/exchange" and self.exchange_failures:
            self.exchange_failures -= 1
            if self._deliver:
                await self._inner.handle_async_request(request)
            raise httpx.ReadError("connection reset", request=request)
        if request.url.path == "/info" and b"orderStatus" in await request.aread() and self.status_failures:
            self.status_failures -= 1
            return httpx.Response(400, text="bad request")
        return await self._inner.handle_async_request(request)


async def open_position_then_drop_the_socket(rig: Rig) -> PendingOrder:
    """Buy 0.05 over the socket, then take the socket down; returns a reduce-only exit, not yet submitted."""
    await rig.place(Side.BUY, "0.05", "440")
    rig.sim.faults.drop_websockets()
    await rig.ws.status.wait_for(lambda status: status.state is ConnectionState.DISCONNECTED)
    return rig.order(Side.SELL, "0.05", "420", reduce_only=True)


async def test_an_exit_lost_on_http_and_never_placed_ends_after_a_retried_reconcile(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    transports: list[FailingTransport] = []

    def failing(sim: MemorySim) -> httpx.AsyncBaseTransport:
        transports.append(FailingTransport(sim.http_transport, deliver=False))
        return transports[0]

    rig = await start_rig(nursery, http_transport=failing)
    exit_order = await open_position_then_drop_the_socket(rig)
    sent_at = rig.now()
    rig.submit(exit_order)
    await rig.until_ended(exit_order)

    retry = sent_at + 0.5  # the first orderStatus failed; the second is asked after the base backoff
    assert rig.tracker.of(exit_order) == [
        (sent_at, "unknown", None),
        (retry, "ended", (OrderState.REJECTED, NEVER_PLACED)),
    ]
    assert rig.sender.stats["reconcile_failures"] == 1
    assert rig.exchange_position() == D("0.05")
    assert transports[0].status_failures == 0


async def test_an_exit_delivered_on_http_without_an_answer_is_found_filled(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(
        nursery, http_transport=lambda sim: FailingTransport(sim.http_transport, deliver=True)
    )
    exit_order = await open_position_then_drop_the_socket(rig)
    sent_at = rig.now()
    rig.submit(exit_order)
    await rig.until_ended(exit_order)

    assert rig.tracker.of(exit_order) == [
        (sent_at, "unknown", None),
        (sent_at + 0.5, "ended", (OrderState.FILLED, "reconciled: filled")),
    ]
    assert rig.exchange_position() == 0


# -- the socket is down --------------------------------------------------------------------------------------


async def test_exits_and_cancels_go_over_http_while_the_socket_is_down_and_entries_are_dropped(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery)
    resting = await rig.rest()
    exit_order = await open_position_then_drop_the_socket(rig)
    dropped_at = rig.now()
    entry = rig.order(Side.BUY, "0.05", "440")
    rig.scheduler.submit_cancel(CancelRequest(TSLA, TSLA_ASSET, resting.oid, None))
    rig.submit(exit_order, entry)
    await rig.until_ended(resting, exit_order, entry)

    assert rig.ws.status.value.state is not ConnectionState.LIVE
    assert rig.tracker.of(resting)[-1] == (dropped_at, "ended", (OrderState.CANCELLED, "cancelled by us"))
    assert [(at, name) for at, name, _ in rig.tracker.of(exit_order)] == [(dropped_at, "filled")]
    assert rig.tracker.of(entry) == [(dropped_at, "ended", (OrderState.REJECTED, WEBSOCKET_DOWN))]
    assert rig.sender.stats["posts_http"] == 2  # the cancel, then the exit; the entry was never signed
    assert rig.tracker.position(TSLA) is None
    assert rig.exchange_position() == 0
    assert (await rig.order_status(resting))["order"]["status"] == "canceled"
    assert (await rig.order_status(entry))["status"] == "unknownOid"
    assert rig.rejects == []


async def test_cancels_by_cloid_and_of_an_order_already_gone(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery)
    resting = await rig.rest()
    rig.scheduler.submit_cancel(CancelRequest(TSLA, TSLA_ASSET, None, resting.cloid))
    await rig.until_ended(resting)
    assert rig.tracker.of(resting)[-1][1:] == ("ended", (OrderState.CANCELLED, "cancelled by us"))

    rig.scheduler.submit_cancel(CancelRequest(TSLA, TSLA_ASSET, resting.oid, None))
    await rig.until(lambda: rig.sender.stats["posts_ws"] == 3)
    gone = "Order was never placed, already canceled, or filled."
    assert [event.benign for event in rig.rejects] == [True]
    assert rig.rejects[0].text.startswith(gone)
