"""Reconciliation after a reconnect, against the in-memory exchange under MockClock.

The tracker's actor runs; the test plays the sender (registers orders, reports post responses) and the
user stream (hands it the fills it would have seen), then makes things happen at the exchange that the
tracker does not hear about, as during a disconnect: another trader fills our resting bid, a cancel's answer
is lost, and an order placed "before a restart" rests unknown.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import attrs
import trio
import trio.testing

from hip3.core.order import Cloid, Side, Tif
from hip3.execution.nonce import NonceManager
from hip3.net.http import HttpClient
from hip3.position.model import OrderPhase, PendingOrder
from hip3.position.reconcile import FILLS_PAGE_LIMIT, OpenOrder, ReconcileReport, reconcile
from hip3.position.resync import Resyncer
from hip3.position.tracker import PositionTracker, TrackerHandle
from hip3.protocol.actions import OrderRequest, cancel_action, exchange_request, order_action
from hip3.protocol.messages import OrderState, parse_fill_list
from hip3.protocol.signing import SigningKey, sign_l1_action
from hip3.sim.harness import BASE_URL, MemorySim, run_memory_sim
from tests.sim_integration import FUNDING, KEY, OTHER_KEY, TRADER, TSLA, TSLA_ASSET, quiet_scenario

OTHER = OTHER_KEY.address
OUR_BID_PX = "430.5"  # inside the quiet makers' 430.33 / 430.77: the best bid
_cloids = itertools.count(1)


@attrs.define
class Rig:
    sim: MemorySim
    http: HttpClient
    nonces: NonceManager
    tracker: PositionTracker
    resyncer: Resyncer
    start: float

    @property
    def handle(self) -> TrackerHandle:
        return self.tracker.handle

    async def post(self, action: dict[str, Any], key: SigningKey = KEY) -> Any:
        nonce = self.nonces.next()
        signature = sign_l1_action(key, action, nonce=nonce, is_mainnet=False)
        return await self.http.exchange(exchange_request(action, dict(signature), nonce=nonce))

    async def place(self, side: Side, px: str, size: str, tif: Tif, *, key: SigningKey = KEY) -> Any:
        """One order; its status (resting / filled / error)."""
        cloid = Cloid.from_int(next(_cloids))
        request = OrderRequest(TSLA_ASSET, side, Decimal(px), Decimal(size), tif, cloid=cloid)
        body = await self.post(order_action([request]), key)
        return body["response"]["data"]["statuses"][0]

    async def place_tracked(self, side: Side, px: str, size: str, tif: Tif) -> PendingOrder:
        """An order as the sender sends it: registered, posted, its answer reported to the tracker."""
        order = PendingOrder(
            cloid=Cloid.from_int(next(_cloids)),
            coin=TSLA,
            asset=TSLA_ASSET,
            side=side,
            size=Decimal(size),
            limit_px=Decimal(px),
            tif=tif,
            reduce_only=False,
            registered_at=trio.current_time(),
        )
        assert self.handle.try_register_order(order)
        request = OrderRequest(TSLA_ASSET, side, order.limit_px, order.size, tif, cloid=order.cloid)
        status = (await self.post(order_action([request])))["response"]["data"]["statuses"][0]
        if "resting" in status:
            await self.handle.order_acked(order.cloid, status["resting"]["oid"])
        else:
            filled = status["filled"]
            await self.handle.response_fill(
                order.cloid,
                filled["oid"],
                Decimal(filled["totalSz"]),
                Decimal(filled["avgPx"]),
                ends_order=True,
            )
        await self.handle.settled()
        return order

    async def stream_every_fill(self) -> int:
        """Hand the tracker every fill so far, as the user stream would have; the newest fill's time."""
        answer = await self.http.info({"type": "userFills", "user": TRADER})
        await self.handle.user_fills(parse_fill_list(TRADER, answer))
        await self.handle.settled()
        return int(max(fill["time"] for fill in answer))

    async def cancel_unknown(self, orders: Sequence[OpenOrder]) -> None:
        await self.post(cancel_action([(TSLA_ASSET, order.oid) for order in orders]))

    async def reconcile(self, since_ms: int) -> ReconcileReport:
        return await reconcile(
            self.handle,
            self.http.info,
            TRADER,
            ["xyz"],
            self.resyncer,
            since_ms=since_ms,
            cancel_unknown=self.cancel_unknown,
        )

    async def exchange_position(self) -> tuple[Decimal, Decimal] | None:
        state = await self.http.info({"type": "clearinghouseState", "user": TRADER, "dex": "xyz"})
        for entry in state["assetPositions"]:
            if entry["position"]["coin"] == TSLA:
                return Decimal(entry["position"]["szi"]), Decimal(entry["position"]["entryPx"])
        return None

    async def open_orders(self) -> list[dict[str, Any]]:
        answer = await self.http.info({"type": "openOrders", "user": TRADER, "dex": "xyz"})
        assert isinstance(answer, list)
        return answer

    def tracked_position(self) -> tuple[Decimal, Decimal] | None:
        position = self.handle.position(TSLA)
        return None if position is None else (position.size, position.entry_px)


@asynccontextmanager
async def rig() -> AsyncIterator[Rig]:
    funding = (*FUNDING, (OTHER, Decimal(10_000)))
    async with trio.open_nursery() as nursery:
        sim: MemorySim = await nursery.start(
            functools.partial(run_memory_sim, quiet_scenario(), fund=funding)
        )
        tracker = PositionTracker(sim.exchange.now_ms)
        handle = await nursery.start(tracker.run)
        async with HttpClient(BASE_URL, transport=sim.http_transport) as http:
            resyncer = Resyncer(handle, http.info, TRADER, {"xyz": frozenset({TSLA})})
            yield Rig(sim, http, NonceManager(sim.exchange.now_ms), tracker, resyncer, trio.current_time())
        nursery.cancel_scope.cancel()


async def test_a_gap_with_an_open_position_and_a_fill_ends_reconciled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with rig() as r:
        # Before the disconnect: a long of 0.1 (seen by response and stream), two bids of ours resting, and
        # one order from before a restart that the tracker never heard of.
        await r.place_tracked(Side.BUY, "431", "0.1", Tif.IOC)
        last_fill_ms = await r.stream_every_fill()
        filled_in_gap = await r.place_tracked(Side.BUY, OUR_BID_PX, "0.2", Tif.GTC)
        cancelled_in_gap = await r.place_tracked(Side.BUY, "425", "0.1", Tif.GTC)
        stranger = (await r.place(Side.BUY, "420", "0.1", Tif.GTC))["resting"]
        assert r.tracked_position() == (Decimal("0.1"), Decimal("430.77"))

        # The gap: another trader sells into our best bid; a cancel of ours goes through, its answer is lost.
        await trio.sleep(5)
        gap_fill = await r.place(Side.SELL, OUR_BID_PX, "0.2", Tif.IOC, key=OTHER_KEY)
        assert gap_fill["filled"]["totalSz"] == "0.2"
        assert cancelled_in_gap.oid is not None
        await r.post(cancel_action([(TSLA_ASSET, cancelled_in_gap.oid)]))
        assert r.tracked_position() == (Decimal("0.1"), Decimal("430.77"))

        await trio.sleep(1)
        report = await r.reconcile(since_ms=last_fill_ms)
        after_first = (r.tracked_position(), await r.exchange_position(), await r.open_orders())
        again = await r.reconcile(since_ms=report.last_fill_ms or last_fill_ms)
        after_again = r.tracked_position()
        stats = dict(r.tracker.stats)

    assert report.ended == (
        (filled_in_gap.cloid, OrderState.FILLED),
        (cancelled_in_gap.cloid, OrderState.CANCELLED),
    )
    assert [(order.oid, order.cloid) for order in report.unknown] == [
        (stranger["oid"], Cloid.parse(stranger["cloid"]))
    ]
    assert report.fills_fetched == 2  # the fill seen before (inside the overlap) and the gap fill
    assert report.malformed == 0
    tracked, exchange, open_after = after_first
    assert tracked == exchange == (Decimal("0.3"), Decimal("430.59"))
    assert open_after == []  # the stranger was cancelled
    assert r.handle.pending_orders() == []

    # Asked again, the gap fill is not counted a second time.
    assert again == ReconcileReport((), (), 2, report.last_fill_ms, 0)
    assert after_again == (Decimal("0.3"), Decimal("430.59"))
    assert stats["fills_applied_userFills"] == 1
    assert stats["fills_duplicate"] == 1 + 2
    assert stats["resyncs"] == 2


async def test_orders_in_flight_or_acked_just_now_are_left_to_the_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with rig() as r:
        in_flight = PendingOrder(
            cloid=Cloid.from_int(next(_cloids)),
            coin=TSLA,
            asset=TSLA_ASSET,
            side=Side.BUY,
            size=Decimal("0.1"),
            limit_px=Decimal(425),
            tif=Tif.GTC,
            reduce_only=False,
            registered_at=trio.current_time(),
        )
        assert r.handle.try_register_order(in_flight)
        just_acked = attrs.evolve(in_flight, cloid=Cloid.from_int(next(_cloids)))
        assert r.handle.try_register_order(just_acked)
        await r.handle.order_acked(just_acked.cloid, 987_654)
        await trio.sleep(1)  # within the grace
        report = await r.reconcile(since_ms=r.sim.exchange.now_ms())

    assert report == ReconcileReport((), (), 0, None, 0)
    assert {order.cloid: order.phase for order in r.handle.pending_orders()} == {
        in_flight.cloid: OrderPhase.QUEUED,
        just_acked.cloid: OrderPhase.RESTING,
    }


def raw_fill(tid: int, time_ms: int) -> dict[str, Any]:
    return {
        "coin": TSLA,
        "px": "430.5",
        "sz": "0.001",
        "side": "B",
        "time": time_ms,
        "startPosition": "0",
        "dir": "Open Long",
        "closedPnl": "0",
        "hash": "0x" + "0" * 64,
        "oid": 1,
        "crossed": False,
        "fee": "0",
        "tid": tid,
        "feeToken": "USDC",
    }


async def test_full_pages_of_fills_are_followed_from_the_newest_time() -> None:
    history = [raw_fill(tid, 1_000 + tid // 2) for tid in range(FILLS_PAGE_LIMIT + 500)]
    asked: list[int] = []

    async def info(request: Any) -> Any:
        if request["type"] == "userFillsByTime":
            asked.append(request["startTime"])
            return [f for f in history if f["time"] >= request["startTime"]][:FILLS_PAGE_LIMIT]
        if request["type"] == "clearinghouseState":
            return {
                "assetPositions": [],
                "marginSummary": {"accountValue": "0"},
                "withdrawable": "0",
                "time": 9,
            }
        return []

    tracker = PositionTracker(lambda: 0)
    async with trio.open_nursery() as nursery:
        handle = await nursery.start(tracker.run)
        resyncer = Resyncer(handle, info, TRADER, {"xyz": frozenset({TSLA})})

        async def never(orders: Sequence[OpenOrder]) -> None:
            raise AssertionError

        report = await reconcile(
            handle, info, TRADER, ["xyz"], resyncer, since_ms=6_000, cancel_unknown=never
        )
        nursery.cancel_scope.cancel()

    newest_of_first_page = history[FILLS_PAGE_LIMIT - 1]["time"]
    assert asked == [1_000, newest_of_first_page]
    assert report.last_fill_ms == history[-1]["time"]
    assert tracker.stats["fills_applied_userFills"] == len(history)
    assert tracker.stats["fills_duplicate"] == 2  # the boundary millisecond, asked twice
