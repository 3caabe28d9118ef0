"""Trading on the in-memory exchange: HTTP /exchange after a jump, the user feeds, and WebSocket posts."""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from typing import Any

import trio
import trio.testing

from hip3.core.order import Side, Tif
from hip3.sim.engine import MARKET_MAKER
from hip3.sim.harness import WALL_START_MS, run_memory_sim
from tests.sim_integration import (
    FUNDING,
    ORACLE_INTERVAL_MS,
    OTHER_KEY,
    QUIET_START_PX,
    TRADER,
    TSLA,
    SimClient,
    ack,
    at_ms,
    maker_top,
    on_channel,
    quiet_scenario,
    signed_order,
    until_ms,
)

JUMP_BPS = 80.0
JUMPED_ORACLE = "433.99"  # 430.55 · 1.008 on the 0.01 grid
STALE_ASK_PX = "430.77"
STALE_ASK = {"px": STALE_ASK_PX, "sz": "4.642", "n": 1}  # 430.55 · 1.0005 rounded up; 2000 USD of TSLA
HASH = re.compile(r"0x[0-9a-f]{64}")


async def test_an_ioc_through_the_stale_ask_fills_there_and_reaches_every_feed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fills = {"type": "userFills", "user": TRADER}
    updates = {"type": "orderUpdates", "user": TRADER}
    trades = {"type": "trades", "coin": TSLA}
    ctx = {"type": "activeAssetCtx", "coin": TSLA}
    async with trio.open_nursery() as nursery:
        sim = await nursery.start(functools.partial(run_memory_sim, quiet_scenario(), fund=FUNDING))
        start = trio.current_time()
        client = await SimClient.connect(sim, nursery)
        await client.subscribe(fills, updates, trades, ctx)
        subscribed = await client.receive_until(until_ms(start, 0))
        sim.process.force_jump(TSLA, JUMP_BPS)
        jump, skipped = await client.receive_where(lambda frame: frame.channel == "activeAssetCtx")
        async with sim.http_client() as http:
            book = (await http.post("/info", json={"type": "l2Book", "coin": TSLA})).json()
            order = signed_order(sim, Side.BUY, JUMPED_ORACLE, "0.1", Tif.IOC)
            response = await http.post("/exchange", json=order)
            feeds = await client.receive_until(until_ms(start, ORACLE_INTERVAL_MS))
            audit = await http.post("/info", json={"type": "simAudit", "user": TRADER})
            fills_by_http = (await http.post("/info", json={"type": "userFills", "user": TRADER})).json()
        nursery.cancel_scope.cancel()

    # Acks at once; userFills starts with an empty snapshot marked isSnapshot.
    assert [frame.message for frame in subscribed] == [
        ack(fills),
        {"channel": "userFills", "data": {"isSnapshot": True, "user": TRADER, "fills": []}},
        ack(updates),
        ack(trades),
        ack(ctx),
    ]
    assert {frame.at for frame in subscribed} == {start}

    # The oracle jumps at 3.000 s while the makers still offer at the old price.
    assert skipped == []
    assert jump.at == at_ms(start, ORACLE_INTERVAL_MS)
    assert jump.data["ctx"]["oraclePx"] == JUMPED_ORACLE
    assert book["levels"][1][0] == STALE_ASK
    assert maker_top(QUIET_START_PX)[1] == Decimal(STALE_ASK_PX)

    # The Ioc buy, limit at the oracle, fills at the stale ask.
    assert response.status_code == 200
    body = response.json()
    oid = body["response"]["data"]["statuses"][0]["filled"]["oid"]
    assert isinstance(oid, int)
    assert body == {
        "status": "ok",
        "response": {
            "type": "order",
            "data": {"statuses": [{"filled": {"totalSz": "0.1", "avgPx": STALE_ASK_PX, "oid": oid}}]},
        },
    }

    # Every feed hears of it at the same virtual instant, stamped with the exchange's wall clock.
    now_ms = WALL_START_MS + ORACLE_INTERVAL_MS
    assert {frame.at for frame in feeds} == {jump.at}
    assert sorted(frame.channel for frame in feeds) == ["orderUpdates", "trades", "userFills"]
    (trade_frame,) = on_channel(feeds, "trades")
    (trade,) = trade_frame.data
    assert HASH.fullmatch(trade["hash"])
    assert isinstance(trade["tid"], int)
    assert trade == {
        "coin": TSLA,
        "side": "B",
        "px": STALE_ASK_PX,
        "sz": "0.1",
        "hash": trade["hash"],
        "time": now_ms,
        "tid": trade["tid"],
        "users": [TRADER, MARKET_MAKER],
    }
    fill = {
        "coin": TSLA,
        "px": STALE_ASK_PX,
        "sz": "0.1",
        "side": "B",
        "time": now_ms,
        "startPosition": "0",
        "dir": "Open Long",
        "closedPnl": "0",
        "hash": trade["hash"],
        "oid": oid,
        "crossed": True,
        "fee": "0.038769",  # 43.077 USD · (4.5 bps protocol + 4.5 bps deployer at fee scale 1), to 6 decimals
        "tid": trade["tid"],
        "feeToken": "USDC",
    }
    (fill_frame,) = on_channel(feeds, "userFills")
    assert fill_frame.message == {"channel": "userFills", "data": {"user": TRADER, "fills": [fill]}}
    assert "isSnapshot" not in fill_frame.data
    assert fills_by_http == [fill]
    (update_frame,) = on_channel(feeds, "orderUpdates")
    assert update_frame.data == [
        {
            "order": {
                "coin": TSLA,
                "side": "B",
                "limitPx": JUMPED_ORACLE,
                "sz": "0",
                "oid": oid,
                "timestamp": now_ms,
                "origSz": "0.1",
            },
            "status": "filled",
            "statusTimestamp": now_ms,
        }
    ]

    # The audit extension agrees: one order, one fill, a ledger that sums to the position.
    assert audit.status_code == 200
    assert audit.json() == {
        "user": TRADER,
        "markets": {
            TSLA: {
                "max_position_notional": "43.077",
                "max_open_order_notional": "0",
                "orders": 1,
                "fills": 1,
                "position": "0.1",
            }
        },
        "orders": 1,
        "fills": 1,
        "rejects": {},
        "nonce_rejects": 0,
        "ledger_consistent": True,
        "internal_errors": 0,
    }


def _post(request_id: int, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"method": "post", "id": request_id, "request": {"type": kind, "payload": payload}}


def _posted(request_id: int, response: dict[str, Any]) -> dict[str, Any]:
    return {"channel": "post", "data": {"id": request_id, "response": response}}


async def test_post_requests_over_the_websocket_answer_info_and_actions_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    l2_request = {"type": "l2Book", "coin": TSLA}
    async with trio.open_nursery() as nursery:
        sim = await nursery.start(functools.partial(run_memory_sim, quiet_scenario(), fund=FUNDING))
        start = trio.current_time()
        client = await SimClient.connect(sim, nursery)
        await trio.sleep_until(at_ms(start, 1500))  # between the driver's wake-ups
        async with sim.http_client() as http:
            book_by_http = (await http.post("/info", json=l2_request)).json()
        await client.send(_post(1, "info", l2_request))
        book = await client.receive()
        await client.send(_post(2, "action", signed_order(sim, Side.BUY, "400", "0.1", Tif.GTC)))
        resting = await client.receive()
        await client.send(_post(3, "info", {"type": "openOrders", "user": TRADER, "dex": "xyz"}))
        open_orders = await client.receive()
        stranger = signed_order(sim, Side.BUY, "400", "0.1", Tif.GTC, key=OTHER_KEY, nonce_offset=1)
        await client.send(_post(4, "action", stranger))
        refused = await client.receive()
        nursery.cancel_scope.cancel()

    sent_at = at_ms(start, 1500)
    assert [frame.at for frame in (book, resting, open_orders, refused)] == [sent_at] * 4

    assert book.message == _posted(1, {"type": "info", "payload": {"type": "l2Book", "data": book_by_http}})
    bid, ask = maker_top(QUIET_START_PX)
    assert book_by_http["time"] == WALL_START_MS + 1500
    assert [book_by_http["levels"][0][0]["px"], book_by_http["levels"][1][0]["px"]] == [str(bid), str(ask)]

    oid = resting.data["response"]["payload"]["response"]["data"]["statuses"][0]["resting"]["oid"]
    assert isinstance(oid, int)
    assert resting.message == _posted(
        2,
        {
            "type": "action",
            "payload": {
                "status": "ok",
                "response": {"type": "order", "data": {"statuses": [{"resting": {"oid": oid}}]}},
            },
        },
    )
    assert open_orders.message == _posted(
        3,
        {
            "type": "info",
            "payload": {
                "type": "openOrders",
                "data": [
                    {
                        "coin": TSLA,
                        "side": "B",
                        "limitPx": "400",
                        "sz": "0.1",
                        "oid": oid,
                        "timestamp": WALL_START_MS + 1500,
                        "origSz": "0.1",
                    }
                ],
            },
        },
    )
    # A refused action keeps the `action` type, with the top-level error as its payload.
    assert refused.message == _posted(
        4,
        {
            "type": "action",
            "payload": {
                "status": "err",
                "response": f"User or API Wallet {OTHER_KEY.address} does not exist.",
            },
        },
    )
