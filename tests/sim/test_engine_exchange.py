from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from hip3.core.order import Cloid, Side, Tif
from hip3.protocol.actions import (
    OrderRequest,
    cancel_action,
    cancel_by_cloid_action,
    order_action,
    schedule_cancel_action,
    update_leverage_action,
)
from hip3.sim.events import BookChanged, MidsChanged, OrderUpdated, TradesPrinted, UserFilled
from tests.sim import BTC, OTHER, OTHER_KEY, SILVER, START_MS, TSLA, USER, Harness, scenario

BUY, SELL = Side.BUY, Side.SELL
CLOID = Cloid.from_int(0xAA)


def ok_cancel(*statuses: Any) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": list(statuses)}}}


@pytest.fixture
def h() -> Harness:
    harness = Harness()
    harness.quotes("xyz:TSLA", [("429.9", "1")], [("430.1", "1")])  # oids 1, 2
    return harness


def test_ioc_fills_against_maker_quotes(h: Harness) -> None:
    body = h.order(TSLA, BUY, "431", "0.1", Tif.IOC)
    assert body == {
        "status": "ok",
        "response": {
            "type": "order",
            "data": {"statuses": [{"filled": {"totalSz": "0.1", "avgPx": "430.1", "oid": 3}}]},
        },
    }
    fill = h.info(type="userFills", user=USER)[0]
    keys = ("coin", "px", "sz", "side", "startPosition", "dir", "closedPnl", "oid", "crossed")
    assert {k: fill[k] for k in keys} == {
        "coin": "xyz:TSLA", "px": "430.1", "sz": "0.1", "side": "B", "startPosition": "0", "dir": "Open Long",
        "closedPnl": "0", "oid": 3, "crossed": True,
    }  # fmt: skip
    assert fill["fee"] == "0.038709" and fill["feeToken"] == "USDC" and fill["time"] == START_MS
    assert fill["hash"].startswith("0x") and len(fill["hash"]) == 66 and isinstance(fill["tid"], int)


def test_partial_ioc_reports_the_filled_size_and_cancels_the_rest(h: Harness) -> None:
    h.quotes("xyz:TSLA", [("429.9", "1")], [("430.1", "0.05"), ("430.2", "1")])  # oids 3, 4, 5
    status = h.order_status(TSLA, BUY, "430.1", "0.1", Tif.IOC)
    assert status == {"filled": {"totalSz": "0.05", "avgPx": "430.1", "oid": 6}}
    record = h.info(type="orderStatus", user=USER, oid=6)
    assert record["order"]["status"] == "canceled"
    assert record["order"]["order"]["sz"] == "0.05" and record["order"]["order"]["origSz"] == "0.1"


def test_ioc_across_two_levels_averages_the_price(h: Harness) -> None:
    h.quotes("xyz:TSLA", [], [("430", "0.05"), ("431", "0.15")])
    assert h.order_status(TSLA, BUY, "431", "0.2", Tif.IOC)["filled"] == {
        "totalSz": "0.2", "avgPx": "430.75", "oid": 5,
    }  # fmt: skip


def test_gtc_rests_and_is_cancelled_by_oid(h: Harness) -> None:
    assert h.order_status(TSLA, BUY, "429", "0.1") == {"resting": {"oid": 3}}
    assert h.post(cancel_action([(TSLA, 3)])) == (200, ok_cancel("success"))
    assert h.post(cancel_action([(TSLA, 3)])) == (
        200,
        ok_cancel({"error": "Order was never placed, already canceled, or filled."}),
    )
    assert h.info(type="orderStatus", user=USER, oid=3)["order"]["status"] == "canceled"


def test_gtc_with_cloid_rests_and_is_cancelled_by_cloid(h: Harness) -> None:
    assert h.order_status(TSLA, BUY, "429", "0.1", cloid=CLOID) == {
        "resting": {"oid": 3, "cloid": CLOID.value}
    }
    assert h.post(cancel_by_cloid_action([(TSLA, CLOID)])) == (200, ok_cancel("success"))
    assert h.post(cancel_by_cloid_action([(TSLA, CLOID)]))[1] == ok_cancel(
        {"error": "Order was never placed, already canceled, or filled."}
    )


def test_cancel_with_the_wrong_asset_is_missing(h: Harness) -> None:
    h.order_status(TSLA, BUY, "429", "0.1")
    assert h.post(cancel_action([(SILVER, 3)]))[1] == ok_cancel(
        {"error": "Order was never placed, already canceled, or filled."}
    )


@pytest.mark.parametrize(
    ("side", "px", "sz", "tif", "reduce_only", "error"),
    [
        (
            BUY,
            "430.1",
            "0.1",
            Tif.ALO,
            False,
            "Post only order would have immediately matched, bbo was 429.9@430.1.",
        ),
        (BUY, "429", "0.1", Tif.GTC, True, "Reduce only order would increase position."),
        (BUY, "429", "0.02", Tif.GTC, False, "Order must have minimum value of $10."),
        (BUY, "429.123", "0.1", Tif.GTC, False, "Price must be divisible by tick size."),
        (BUY, "429", "0.0251", Tif.GTC, False, "Order has invalid size."),
        (BUY, "429", "0.1", Tif.IOC, False, "Order could not immediately match against any resting orders."),
        (BUY, "429", "300", Tif.GTC, False, "Insufficient margin to place order."),
    ],
)
def test_order_rejections(
    h: Harness, *, side: Side, px: str, sz: str, tif: Tif, reduce_only: bool, error: str
) -> None:
    assert h.order(TSLA, side, px, sz, tif, reduce_only=reduce_only) == {
        "status": "ok",
        "response": {"type": "order", "data": {"statuses": [{"error": error}]}},
    }
    assert h.sim.audit(USER)["rejects"] == {error: 1}


def test_rejected_orders_carry_the_rejected_status(h: Harness) -> None:
    h.order(TSLA, BUY, "430.1", "0.1", Tif.ALO)
    h.order(TSLA, BUY, "429", "0.02")
    updates = [e.update["status"] for e in h.of_type(OrderUpdated)]
    assert updates == ["badAloPxRejected", "minTradeNtlRejected"]


def test_zero_size_and_unknown_asset(h: Harness) -> None:
    wire = {"a": TSLA, "b": True, "p": "429", "s": "0", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    bad_asset = {**wire, "a": 123, "s": "1"}
    _, body = h.post({"type": "order", "orders": [wire, bad_asset], "grouping": "na"})
    assert body["response"]["data"]["statuses"] == [
        {"error": "Order has zero size."},
        {"error": "Order has invalid asset."},
    ]


def test_reduce_only_that_would_flip_is_rejected_and_one_that_reduces_fills(h: Harness) -> None:
    h.order_status(TSLA, BUY, "431", "0.1", Tif.IOC)
    assert h.order_status(TSLA, SELL, "429", "0.2", Tif.IOC, reduce_only=True) == {
        "error": "Reduce only order would increase position."
    }
    assert "filled" in h.order_status(TSLA, SELL, "429", "0.05", Tif.IOC, reduce_only=True)


def test_batch_statuses_come_in_request_order(h: Harness) -> None:
    orders = [
        OrderRequest(TSLA, BUY, D(429), D("0.1"), Tif.GTC),
        OrderRequest(TSLA, BUY, D(429), D("0.01"), Tif.GTC),
        OrderRequest(TSLA, BUY, D(431), D("0.1"), Tif.IOC),
    ]
    _, body = h.post(order_action(orders))
    assert body["response"]["data"]["statuses"] == [
        {"resting": {"oid": 3}},
        {"error": "Order must have minimum value of $10."},
        {"filled": {"totalSz": "0.1", "avgPx": "430.1", "oid": 5}},
    ]


def test_position_lifecycle_with_fees_and_closed_pnl() -> None:
    h = Harness()

    def trade(side: Side, px: str, sz: str) -> dict[str, Any]:
        if side is BUY:
            h.quotes("xyz:TSLA", [], [(px, "100")])
        else:
            h.quotes("xyz:TSLA", [(px, "100")], [])
        assert "filled" in h.order_status(TSLA, side, px, sz, Tif.IOC)
        return h.info(type="userFills", user=USER)[0]

    steps = [
        (BUY, "400", "1", "0", "Open Long", "0"),
        (BUY, "420", "1", "1", "Open Long", "0"),
        (SELL, "430", "0.5", "2", "Close Long", "10"),
        (SELL, "400", "2.5", "1.5", "Long > Short", "-15"),
        (BUY, "390", "1", "-1", "Close Short", "10"),
    ]
    fees = D(0)
    for side, px, sz, start, direction, closed in steps:
        fill = trade(side, px, sz)
        assert (fill["startPosition"], fill["dir"], fill["closedPnl"]) == (start, direction, closed)
        assert D(fill["fee"]) == (D(px) * D(sz) * D("0.0009")).quantize(D("0.000001"))
        fees += D(fill["fee"])
    state = h.info(type="clearinghouseState", user=USER, dex="xyz")
    assert state["assetPositions"] == []
    assert D(state["marginSummary"]["accountValue"]) == D(10_000) + D(5) - fees
    audit = h.sim.audit(USER)
    assert audit["ledger_consistent"] is True
    assert audit["markets"]["xyz:TSLA"]["max_position_notional"] == "840"  # 2 @ 420, the fill that made it
    assert audit["fills"] == 5


def test_entry_price_in_clearinghouse_state() -> None:
    h = Harness()
    h.quotes("xyz:TSLA", [], [("400", "1"), ("420", "1")])
    h.order_status(TSLA, BUY, "420", "2", Tif.IOC)
    position = h.info(type="clearinghouseState", user=USER, dex="xyz")["assetPositions"][0]["position"]
    assert position["szi"] == "2" and position["entryPx"] == "410"
    assert position["leverage"] == {"type": "isolated", "value": 10, "rawUsd": "-738.0"}  # 82 - 820


@pytest.mark.parametrize(
    ("scale", "growth", "fee"),
    [
        ("0.5", False, "0.29025"),  # x·(1 + 0.5)
        ("1", False, "0.387"),  # 2x
        ("3", False, "1.161"),  # 6x
        ("0.5", True, "0.029025"),
        ("1", True, "0.0387"),
        ("3", True, "0.1161"),
    ],
)
def test_hip3_taker_fee_in_fills(scale: str, growth: bool, fee: str) -> None:
    h = Harness(scenario(scale=D(scale), growth=growth))
    h.quotes("xyz:TSLA", [], [("430", "5")])
    h.order_status(TSLA, BUY, "430", "1", Tif.IOC)
    assert h.info(type="userFills", user=USER)[0]["fee"] == fee


def test_first_dex_fee_is_the_base_rate() -> None:
    h = Harness(scenario(scale=D(3), growth=True))
    h.quotes("BTC", [], [("90000", "1")])
    h.order_status(BTC, BUY, "90000", "0.001", Tif.IOC)
    assert h.info(type="userFills", user=USER)[0]["fee"] == "0.0405"  # 90 × 4.5 bp


def test_resting_user_order_is_maker_against_another_user(h: Harness) -> None:
    h.order_status(TSLA, BUY, "430", "0.1")  # oid 3 rests inside the spread
    status = h.order_status(TSLA, SELL, "430", "0.1", Tif.IOC, key=OTHER_KEY)
    assert status == {"filled": {"totalSz": "0.1", "avgPx": "430", "oid": 4}}
    maker_fill = h.info(type="userFills", user=USER)[0]
    assert maker_fill["crossed"] is False and maker_fill["fee"] == "0.0129"  # 43 × 3 bp
    assert h.info(type="orderStatus", user=USER, oid=3)["order"]["status"] == "filled"
    assert h.info(type="userFills", user=OTHER)[0]["tid"] == maker_fill["tid"]


def test_self_trade_cancels_the_resting_order_of_the_same_user(h: Harness) -> None:
    h.order_status(TSLA, SELL, "430", "0.1")  # oid 3, better than the maker's 430.1
    status = h.order_status(TSLA, BUY, "430.1", "0.1", Tif.IOC)
    assert status == {"filled": {"totalSz": "0.1", "avgPx": "430.1", "oid": 4}}
    assert h.info(type="orderStatus", user=USER, oid=3)["order"]["status"] == "selfTradeCanceled"


def test_oi_cap() -> None:
    h = Harness(scenario(oi_cap=D(1000)))
    h.quotes("xyz:TSLA", [("429", "10")], [("430", "10")])
    assert h.order_status(TSLA, BUY, "430", "2", Tif.IOC)["filled"]["totalSz"] == "2"
    assert h.order_status(TSLA, BUY, "430", "1", Tif.IOC) == {
        "error": "Order would increase open interest while open interest is capped"
    }
    assert "filled" in h.order_status(TSLA, SELL, "429", "1", Tif.IOC)  # reducing is allowed


def test_halted_market(h: Harness) -> None:
    h.order_status(TSLA, BUY, "429", "0.1")
    h.sim.set_halted("xyz:TSLA", True)
    assert h.info(type="openOrders", user=USER, dex="xyz") == []
    assert h.order_status(TSLA, BUY, "429", "0.1") == {"error": "Trading is halted for this asset."}
    assert h.info(type="l2Book", coin="xyz:TSLA")["levels"] == [[], []]
    h.sim.set_halted("xyz:TSLA", False)
    assert h.order_status(TSLA, BUY, "429", "0.1") == {"resting": {"oid": 5}}


def test_sz_decimals_change(h: Harness) -> None:
    h.sim.set_sz_decimals("xyz:TSLA", 1)
    assert h.order_status(TSLA, BUY, "429", "0.05") == {"error": "Order has invalid size."}
    assert h.order_status(TSLA, BUY, "429", "0.1") == {"resting": {"oid": 4}}
    assert h.info(type="meta", dex="xyz")["universe"][0]["szDecimals"] == 1


def test_reject_next_orders(h: Harness) -> None:
    h.sim.reject_next_orders(2, "Order price too far from oracle")
    assert h.order_status(TSLA, BUY, "429", "0.1") == {"error": "Order price too far from oracle"}
    assert h.order_status(TSLA, BUY, "429", "0.1") == {"error": "Order price too far from oracle"}
    assert h.order_status(TSLA, BUY, "429", "0.1") == {"resting": {"oid": 5}}
    assert h.sim.audit(USER)["rejects"] == {"Order price too far from oracle": 2}


def test_schedule_cancel_arm_too_early_fire_clear_and_cap() -> None:
    h = Harness(scenario(cap=1))
    h.quotes("xyz:TSLA", [("429.9", "1")], [("430.1", "1")])
    assert h.post(schedule_cancel_action(START_MS + 4_999)) == (
        200,
        {
            "status": "err",
            "response": "Scheduled cancel time too early, must be at least 5 seconds from now.",
        },
    )
    assert h.post(schedule_cancel_action(START_MS + 10_000)) == (
        200,
        {"status": "ok", "response": {"type": "default"}},
    )
    h.order_status(TSLA, BUY, "429", "0.1")  # oid 3
    h.clock[0] = START_MS + 9_999
    h.sim.on_time()
    assert h.info(type="orderStatus", user=USER, oid=3)["order"]["status"] == "open"
    h.clock[0] = START_MS + 10_000
    h.sim.on_time()
    assert h.info(type="orderStatus", user=USER, oid=3)["order"]["status"] == "scheduledCancel"
    assert h.post(schedule_cancel_action(START_MS + 60_000)) == (
        200,
        {"status": "err", "response": "Too many scheduled cancel triggers today, the limit is 1 per day."},
    )
    h.clock[0] = START_MS + 86_400_000  # next UTC day
    assert h.post(schedule_cancel_action(h.clock[0] + 10_000))[1]["status"] == "ok"
    assert h.post(schedule_cancel_action(None))[1]["status"] == "ok"  # clears
    h.order_status(TSLA, BUY, "429", "0.1")
    h.clock[0] += 20_000
    h.sim.on_time()
    assert len(h.info(type="openOrders", user=USER, dex="xyz")) == 1


def test_update_leverage() -> None:
    h = Harness()
    default = {"status": "ok", "response": {"type": "default"}}
    assert h.post(update_leverage_action(TSLA, is_cross=True, leverage=5))[1] == {
        "status": "err", "response": "Cross margin is not allowed for this asset."
    }  # fmt: skip
    assert h.post(update_leverage_action(TSLA, is_cross=False, leverage=11))[1] == {
        "status": "err", "response": "Invalid leverage value."
    }  # fmt: skip
    assert h.post(update_leverage_action(TSLA, is_cross=False, leverage=5))[1] == default
    assert h.post(update_leverage_action(BTC, is_cross=True, leverage=40))[1] == default
    h.quotes("xyz:TSLA", [], [("400", "1")])
    h.order_status(TSLA, BUY, "400", "1", Tif.IOC)
    position = h.info(type="clearinghouseState", user=USER, dex="xyz")["assetPositions"][0]["position"]
    assert position["leverage"]["value"] == 5 and position["marginUsed"] == "86.0"  # at mark 430


def test_events_in_order(h: Harness) -> None:
    h.events.clear()
    h.order_status(TSLA, BUY, "429", "0.1")  # rests below the best bid: top unchanged
    rest_events = list(h.events)
    assert [type(e) for e in rest_events] == [OrderUpdated, BookChanged]
    assert rest_events[0].update["status"] == "open" and rest_events[0].user == USER
    assert rest_events[1].bbo is None
    assert rest_events[1].book["levels"][0] == [
        {"px": "429.9", "sz": "1", "n": 1},
        {"px": "429", "sz": "0.1", "n": 1},
    ]
    h.events.clear()
    h.order_status(TSLA, BUY, "430.1", "1", Tif.IOC)
    kinds = [type(e) for e in h.events]
    assert kinds == [UserFilled, OrderUpdated, TradesPrinted, BookChanged, MidsChanged]
    trades = h.of_type(TradesPrinted)[0].trades
    assert [(t["side"], t["px"], t["sz"], t["users"][0]) for t in trades] == [("B", "430.1", "1", USER)]
    book = h.of_type(BookChanged)[0]
    assert book.bbo == {
        "coin": "xyz:TSLA",
        "time": START_MS,
        "bbo": [{"px": "429.9", "sz": "1", "n": 1}, None],
    }
    assert h.of_type(OrderUpdated)[0].update["status"] == "filled"
    assert h.of_type(MidsChanged)[0].mids["xyz:TSLA"] == "430.1"  # one-sided book: the last trade


def test_remove_listener(h: Harness) -> None:
    seen: list[object] = []
    remove = h.sim.add_listener(seen.append)
    h.order_status(TSLA, BUY, "429", "0.1")
    remove()
    h.order_status(TSLA, BUY, "429", "0.1")
    assert len(seen) == 2


def test_set_oracle_moves_mark_at_most_one_percent(h: Harness) -> None:
    h.events.clear()
    h.sim.set_oracle("xyz:TSLA", D(500))
    ctx = h.events[0].ctx  # type: ignore[union-attr]
    assert ctx["coin"] == "xyz:TSLA" and ctx["ctx"]["oraclePx"] == "500"
    assert ctx["ctx"]["markPx"] == "430.1"  # median(500, 429.9, 430.1)


def test_maker_quotes_never_cross_resting_user_orders(h: Harness) -> None:
    h.order_status(TSLA, SELL, "430.05", "0.1")
    h.quotes("xyz:TSLA", [("430.1", "1"), ("430", "1")], [("430.2", "1")])
    book = h.info(type="l2Book", coin="xyz:TSLA")["levels"]
    assert [lv["px"] for lv in book[0]] == ["430"]
    assert [lv["px"] for lv in book[1]] == ["430.05", "430.2"]
