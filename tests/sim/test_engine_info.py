from __future__ import annotations

from decimal import Decimal as D

import pytest

from hip3.core.order import Cloid, Side, Tif
from tests.sim import DESERIALIZE, START_MS, TSLA, USER, Harness, scenario


@pytest.fixture
def h() -> Harness:
    harness = Harness(scenario(oi_cap=D(1_000_000), growth=True))
    harness.quotes("xyz:TSLA", [("429.9", "1"), ("429.8", "2")], [("430.1", "1")])
    return harness


def test_meta_with_dex(h: Harness) -> None:
    assert h.info(type="meta", dex="xyz") == {
        "universe": [
            {"name": "xyz:TSLA", "szDecimals": 3, "maxLeverage": 10, "marginTableId": 10,
             "onlyIsolated": True, "marginMode": "strictIsolated", "growthMode": "enabled"},
            {"name": "xyz:SILVER", "szDecimals": 2, "maxLeverage": 20, "marginTableId": 20,
             "onlyIsolated": True, "marginMode": "strictIsolated"},
        ],
        "marginTables": [
            [10, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 10}]}],
            [20, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 20}]}],
        ],
        "collateralToken": 0,
    }  # fmt: skip
    assert h.info(type="meta")["universe"] == [
        {"name": "BTC", "szDecimals": 5, "maxLeverage": 40, "marginTableId": 40}
    ]


def test_spot_meta_and_perp_dexs(h: Harness) -> None:
    assert h.info(type="spotMeta") == {"universe": [], "tokens": []}
    assert h.info(type="perpDexs") == [
        None,
        {
            "name": "xyz",
            "fullName": "XYZ",
            "deployer": "0x5e89b26d8d66da9888c835c9bfcc2aa51813e152",
            "oracleUpdater": None,
            "feeRecipient": None,
            "assetToStreamingOiCap": [["xyz:TSLA", "1000000.0"]],
            "assetToFundingMultiplier": [["xyz:SILVER", "1.0"], ["xyz:TSLA", "1.0"]],
        },
    ]


def test_meta_and_asset_ctxs(h: Harness) -> None:
    meta, ctxs = h.info(type="metaAndAssetCtxs", dex="xyz")
    assert meta == h.info(type="meta", dex="xyz")
    assert ctxs[0] == {
        "funding": "0.0", "openInterest": "0", "prevDayPx": "430", "dayNtlVlm": "0.0", "premium": None,
        "oraclePx": "430", "markPx": "430", "midPx": "430", "impactPxs": ["429.9", "430.1"],
        "dayBaseVlm": "0.0",
    }  # fmt: skip
    assert ctxs[1]["midPx"] is None


def test_all_mids(h: Harness) -> None:
    assert h.info(type="allMids", dex="xyz") == {"xyz:TSLA": "430", "xyz:SILVER": "32"}
    assert h.info(type="allMids") == {"BTC": "90000"}


def test_l2_book(h: Harness) -> None:
    assert h.info(type="l2Book", coin="xyz:TSLA", nSigFigs=None, mantissa=None) == {
        "coin": "xyz:TSLA",
        "time": START_MS,
        "levels": [
            [{"px": "429.9", "sz": "1", "n": 1}, {"px": "429.8", "sz": "2", "n": 1}],
            [{"px": "430.1", "sz": "1", "n": 1}],
        ],
    }
    assert h.sim.info({"type": "l2Book", "coin": "NOPE"}) == (200, None)


def test_open_orders_frontend_open_orders_and_order_status(h: Harness) -> None:
    cloid = Cloid.from_int(7)
    h.order_status(TSLA, Side.SELL, "431", "0.1", cloid=cloid)  # oid 4
    expected = {
        "coin": "xyz:TSLA", "side": "A", "limitPx": "431", "sz": "0.1", "oid": 4, "timestamp": START_MS,
        "origSz": "0.1", "cloid": cloid.value,
    }  # fmt: skip
    assert h.info(type="openOrders", user=USER, dex="xyz") == [expected]
    assert h.info(type="openOrders", user=USER) == []
    frontend = {
        **expected, "isPositionTpsl": False, "isTrigger": False, "orderType": "Limit", "reduceOnly": False,
        "tif": "Gtc", "triggerCondition": "N/A", "triggerPx": "0.0", "children": [],
    }  # fmt: skip
    assert h.info(type="frontendOpenOrders", user=USER, dex="xyz") == [frontend]
    by_oid = {"status": "order", "order": {"order": frontend, "status": "open", "statusTimestamp": START_MS}}
    assert h.info(type="orderStatus", user=USER, oid=4) == by_oid
    assert h.info(type="orderStatus", user=USER, oid=cloid.value) == by_oid
    assert h.info(type="orderStatus", user=USER, oid=999) == {"status": "unknownOid"}
    assert h.info(type="orderStatus", user="0x" + "00" * 20, oid=4) == {"status": "unknownOid"}


def test_clearinghouse_state_shape(h: Harness) -> None:
    empty = h.info(type="clearinghouseState", user=USER, dex="xyz")
    assert empty == {
        "assetPositions": [],
        "marginSummary": {
            "accountValue": "10000.0", "totalNtlPos": "0.0",
            "totalRawUsd": "10000.0", "totalMarginUsed": "0.0",
        },
        "crossMarginSummary": {
            "accountValue": "10000.0", "totalNtlPos": "0.0",
            "totalRawUsd": "10000.0", "totalMarginUsed": "0.0",
        },
        "crossMaintenanceMarginUsed": "0.0",
        "withdrawable": "10000.0",
        "time": START_MS,
    }  # fmt: skip
    h.order_status(TSLA, Side.BUY, "430.1", "0.1", Tif.IOC)
    position = h.info(type="clearinghouseState", user=USER, dex="xyz")["assetPositions"][0]
    assert position["type"] == "oneWay"
    assert set(position["position"]) == {
        "coin", "szi", "entryPx", "positionValue", "unrealizedPnl", "returnOnEquity", "liquidationPx",
        "marginUsed", "maxLeverage", "leverage", "cumFunding",
    }  # fmt: skip


def test_user_fills_and_by_time(h: Harness) -> None:
    h.order_status(TSLA, Side.BUY, "430.1", "0.05", Tif.IOC)
    h.clock[0] += 1000
    h.order_status(TSLA, Side.BUY, "430.1", "0.05", Tif.IOC)
    fills = h.info(type="userFills", user=USER)
    assert [f["time"] for f in fills] == [START_MS + 1000, START_MS]
    assert [f["time"] for f in h.info(type="userFillsByTime", user=USER, startTime=START_MS + 1)] == [
        START_MS + 1000
    ]
    assert h.info(type="userFillsByTime", user=USER, startTime=0, endTime=START_MS)[0]["time"] == START_MS


def test_user_rate_limit(h: Harness) -> None:
    h.order_status(TSLA, Side.BUY, "430.1", "0.1", Tif.IOC)
    assert h.info(type="userRateLimit", user=USER) == {
        "cumVlm": "43.01", "nRequestsUsed": 1, "nRequestsCap": 10043, "nRequestsSurplus": 0,
    }  # fmt: skip


def test_sim_audit(h: Harness) -> None:
    h.order_status(TSLA, Side.BUY, "430.1", "0.1", Tif.IOC)
    h.order_status(TSLA, Side.BUY, "429", "0.1")
    h.order_status(TSLA, Side.BUY, "428", "0.2")
    h.order_status(TSLA, Side.BUY, "428", "0.01")
    h.post({"type": "noop"}, nonce=1)
    expected = {
        "user": USER,
        "markets": {
            "xyz:TSLA": {"max_position_notional": "43.01", "max_open_order_notional": "128.5", "orders": 4,
                         "fills": 1, "position": "0.1"},
        },
        "orders": 4,
        "fills": 1,
        "rejects": {"Order must have minimum value of $10.": 1},
        "nonce_rejects": 1,
        "ledger_consistent": True,
        "internal_errors": 0,
    }  # fmt: skip
    assert h.sim.audit(USER) == expected
    assert h.info(type="simAudit", user=USER) == expected


@pytest.mark.parametrize(
    "request_",
    [
        {"type": "nope"},
        {},
        [],
        None,
        {"type": "clearinghouseState"},
        {"type": "clearinghouseState", "user": 5},
        {"type": "meta", "dex": 3},
        {"type": "userFillsByTime", "user": USER},
        {"type": "orderStatus", "user": USER, "oid": 1.5},
    ],
)
def test_bad_requests_answer_422(h: Harness, request_: object) -> None:
    status, body = h.sim.info(request_)
    assert status == 422 and isinstance(body, str) and body.startswith(DESERIALIZE)


@pytest.mark.parametrize("kind", ["meta", "metaAndAssetCtxs", "allMids", "clearinghouseState", "openOrders"])
def test_bad_dex_answers_500_null(h: Harness, kind: str) -> None:
    assert h.sim.info({"type": kind, "dex": "nope", "user": USER}) == (500, None)


def test_coins(h: Harness) -> None:
    assert h.sim.coins == ["BTC", "xyz:TSLA", "xyz:SILVER"]
