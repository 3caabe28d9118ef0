"""The loopback simulator, driven by the official hyperliquid-python-sdk as an ordinary client.

Harness (conftest.py and __init__.py in this package): one `python -m hip3 sim --port 0 --fund …` subprocess
per session, serving the default scenario with three funded test accounts; `Info` and `Exchange` from the
SDK pointed at its URL with `perp_dexs=["", "xyz"]`; the SDK's WebSocket (websocket-client, in its own
thread) for the streaming tests. These are plain synchronous tests on real loopback sockets and real time.

Every test asserts the exact response. Prices are derived from the book the test has just read, so tests do
not depend on each other's order. Where the expected response depends on the book or the mark at the moment
of the request (an Ioc's average price, an Alo's bbo text, a position's value), the test acts inside a calm
window of the market process (`CalmBook`), when no re-quote or oracle update can land in between.
"""

from __future__ import annotations

import copy
import queue
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import order_request_to_order_wire, order_wires_to_order_action, sign_l1_action
from hyperliquid.utils.types import Cloid

from hip3.protocol.signing import recover_l1_signer
from hip3.sim import errors_text
from tests.sim_sdk import (
    FRESH,
    FUNDED_USDC,
    MASTER,
    PERP_DEXS,
    TRADER,
    TSLA,
    CalmBook,
    NonceClock,
    first_message,
)

Json = dict[str, Any]

TSLA_SZ_DECIMALS: Final = 3
MAX_PERP_PRICE_DECIMALS: Final = 6
PRICE_SIG_FIGS: Final = 5
LEVERAGE: Final = 10  # the engine's default leverage: min(20, xyz:TSLA's maxLeverage 10)
TAKER_FEE_RATE: Final = Decimal("0.0009")  # user rate 4.5 bps; xyz deployer scale 1: protocol + deployer (§9)
USDC_QUANTUM: Final = Decimal("0.000001")
COMPUTED_PRICE_QUANTUM: Final = Decimal("0.00000001")
SIZE: Final = Decimal("0.05")  # about $20 of TSLA: above the $10 minimum, far below one maker level
WS_TIMEOUT_S: Final = 10.0
GTC: Final = {"limit": {"tif": "Gtc"}}
IOC: Final = {"limit": {"tif": "Ioc"}}
ALO: Final = {"limit": {"tif": "Alo"}}
DEFAULT_OK: Final = {"status": "ok", "response": {"type": "default"}}
CANCEL_MISSING: Final = "Order was never placed, already canceled, or filled."
UNFUNDED: Final = "0x000000000000000000000000000000000000dead"  # an address that never deposited

XYZ_MARKETS: Final = [  # (name, szDecimals, maxLeverage) in meta order, from the default scenario
    ("xyz:TSLA", 3, 10),
    ("xyz:NVDA", 3, 10),
    ("xyz:SILVER", 2, 20),
    ("xyz:GOLD", 4, 20),
    ("xyz:CL", 3, 10),
    ("xyz:PLATINUM", 4, 10),
    ("xyz:XYZ100", 4, 20),
]


# --------------------------------------------------------------------------------------------- helpers


def wire(value: Decimal) -> str:
    """The simulator's number string (hip3.core.rounding.to_wire): plain digits, no trailing zeros."""
    return "0" if value == 0 else format(value.normalize(), "f")


def amount(value: Decimal) -> str:
    """Money and amounts as the real API writes them (reference §6.3, §6.5): whole numbers keep ".0"."""
    text = wire(value)
    return text if "." in text else f"{text}.0"


def usdc(value: Decimal) -> Decimal:
    return value.quantize(USDC_QUANTUM, rounding=ROUND_HALF_EVEN)


def computed_price(value: Decimal) -> Decimal:
    """A computed price (an average or an entry price) as the exchange sends it: at most 8 decimals."""
    return value.quantize(COMPUTED_PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)


def tick_at(px: Decimal) -> Decimal:
    """xyz:TSLA's price step near `px`: 5 significant figures, at most 6 − szDecimals decimals."""
    decimals = min(MAX_PERP_PRICE_DECIMALS - TSLA_SZ_DECIMALS, PRICE_SIG_FIGS - 1 - px.adjusted())
    return Decimal(1).scaleb(-max(0, decimals))


def on_tick(px: Decimal, rounding: str) -> Decimal:
    return px.quantize(tick_at(px), rounding=rounding)


def best_levels(book: Json) -> tuple[Json, Json]:
    bids, asks = book["levels"]
    return bids[0], asks[0]


def far_below_bid(book: Json) -> Decimal:
    """A valid price 10 % under the best bid: a buy there rests and never fills."""
    return on_tick(Decimal(best_levels(book)[0]["px"]) * Decimal("0.9"), ROUND_FLOOR)


def far_above_ask(book: Json) -> Decimal:
    return on_tick(Decimal(best_levels(book)[1]["px"]) * Decimal("1.1"), ROUND_CEILING)


def through_the_ask(book: Json, fraction: str) -> Decimal:
    """A valid buy limit `fraction` above the best ask."""
    return on_tick(Decimal(best_levels(book)[1]["px"]) * (1 + Decimal(fraction)), ROUND_CEILING)


def take_from(asks: list[Json], size: Decimal, limit: Decimal) -> list[tuple[Decimal, Decimal]]:
    """The (price, size) fills a buy of `size` up to `limit` gets from these ask levels, best first."""
    fills = []
    remaining = size
    for level in asks:
        px = Decimal(level["px"])
        if remaining == 0 or px > limit:
            break
        take = min(remaining, Decimal(level["sz"]))
        fills.append((px, take))
        remaining -= take
    return fills


def order_ok(*statuses: object) -> Json:
    return {"status": "ok", "response": {"type": "order", "data": {"statuses": list(statuses)}}}


def cancel_ok(*statuses: object) -> Json:
    return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": list(statuses)}}}


def top_level_error(text: str) -> Json:
    return {"status": "err", "response": text}


def oid_of(response: Json, kind: str) -> int:
    """The oid of the single `resting` or `filled` status in an order response (fails on anything else)."""
    statuses = (
        response.get("response", {}).get("data", {}).get("statuses")
        if response.get("status") == "ok"
        else None
    )
    assert isinstance(statuses, list) and len(statuses) == 1 and kind in statuses[0], response
    oid = statuses[0][kind]["oid"]
    assert isinstance(oid, int), response
    return oid


def fills_of(info: Info, user: str, oid: int) -> list[Json]:
    """The user's fills of one order, oldest first (userFills answers newest first)."""
    return [fill for fill in reversed(info.user_fills(user)) if fill["oid"] == oid]


def tsla_position_size(info: Info, user: str) -> Decimal:
    state = info.user_state(user, dex="xyz")
    sizes = [Decimal(p["position"]["szi"]) for p in state["assetPositions"] if p["position"]["coin"] == TSLA]
    return sizes[0] if sizes else Decimal(0)


def tsla_mark(info: Info) -> Decimal:
    meta, contexts = info.post("/info", {"type": "metaAndAssetCtxs", "dex": "xyz"})
    names = [entry["name"] for entry in meta["universe"]]
    return Decimal(contexts[names.index(TSLA)]["markPx"])


def open_order(px: Decimal, size: Decimal, oid: int, timestamp: int) -> Json:
    """An openOrders entry of a plain buy on xyz:TSLA."""
    return {
        "coin": TSLA,
        "side": "B",
        "limitPx": wire(px),
        "sz": wire(size),
        "oid": oid,
        "timestamp": timestamp,
        "origSz": wire(size),
    }


def margin_summary(value: Decimal, ntl: Decimal, raw: Decimal, margin: Decimal) -> Json:
    return {
        "accountValue": amount(usdc(value)),
        "totalNtlPos": amount(usdc(ntl)),
        "totalRawUsd": amount(usdc(raw)),
        "totalMarginUsed": amount(usdc(margin)),
    }


def flat_state(balance: Decimal) -> Json:
    """clearinghouseState (without `time`) of an account with no position and no order.

    Amounts as the real exchange writes them: "100000.0", "0.0".
    """
    return {
        "assetPositions": [],
        "marginSummary": margin_summary(balance, Decimal(0), balance, Decimal(0)),
        "crossMarginSummary": margin_summary(balance, Decimal(0), balance, Decimal(0)),
        "crossMaintenanceMarginUsed": "0.0",
        "withdrawable": amount(balance),
    }


def long_tsla_state(balance: Decimal, szi: Decimal, entry: Decimal, mark: Decimal) -> Json:
    """clearinghouseState (without `time`) of an account whose only position is an isolated TSLA long."""
    value = szi * mark
    pnl = szi * (mark - entry)
    entry_margin = szi * entry / LEVERAGE
    margin = usdc(value / LEVERAGE)
    account_value = balance + usdc(pnl)
    position = {
        "coin": TSLA,
        "szi": wire(szi),
        "entryPx": wire(computed_price(entry)),
        "positionValue": amount(usdc(value)),
        "unrealizedPnl": amount(usdc(pnl)),
        "returnOnEquity": amount(usdc(pnl / entry_margin)),
        "liquidationPx": None,  # the simulator does not liquidate (engine.py differences)
        "marginUsed": amount(margin),
        "maxLeverage": 10,
        "leverage": {
            "type": "isolated",
            "value": LEVERAGE,
            "rawUsd": amount(usdc(entry_margin - szi * entry)),
        },
        "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
    }
    return {
        "assetPositions": [{"type": "oneWay", "position": position}],
        "marginSummary": margin_summary(account_value, value, account_value - value, margin),
        "crossMarginSummary": margin_summary(
            account_value - margin, Decimal(0), account_value - margin, Decimal(0)
        ),
        "crossMaintenanceMarginUsed": "0.0",
        "withdrawable": amount(usdc(account_value - margin)),
    }


def without_time(state: Json) -> Json:
    rest = dict(state)
    assert isinstance(rest.pop("time"), int), state
    return rest


def signed_order_body(exchange: Exchange, info: Info, nonces: NonceClock, px: Decimal) -> Json:
    """An /exchange body for one Gtc buy of SIZE at `px`, signed with the SDK's own helpers."""
    order = {
        "coin": TSLA,
        "is_buy": True,
        "sz": float(SIZE),
        "limit_px": float(px),
        "order_type": GTC,
        "reduce_only": False,
    }
    action = order_wires_to_order_action([order_request_to_order_wire(order, info.name_to_asset(TSLA))])
    nonce = nonces()
    signature = sign_l1_action(exchange.wallet, action, None, nonce, None, False)
    return {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": None,
        "expiresAfter": None,
    }


# --------------------------------------------------------------------------------------------- info


def test_meta_with_dex_lists_the_xyz_markets_and_the_sdk_maps_them_to_hip3_asset_ids(info: Info) -> None:
    assert info.meta(dex="xyz") == {
        "universe": [
            {
                "name": name,
                "szDecimals": sz_decimals,
                "maxLeverage": max_leverage,
                "marginTableId": max_leverage,
                "onlyIsolated": True,
                "marginMode": "strictIsolated",
            }
            for name, sz_decimals, max_leverage in XYZ_MARKETS
        ],
        "marginTables": [
            [10, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 10}]}],
            [20, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 20}]}],
        ],
        "collateralToken": 0,
    }
    # 100000 + perp_dex_index (1) · 10000 + index in meta (§4.1), as the SDK computes it from perpDexs
    assert {name: info.name_to_asset(name) for name, _, _ in XYZ_MARKETS} == {
        name: 110_000 + index for index, (name, _, _) in enumerate(XYZ_MARKETS)
    }
    assert {name: info.asset_to_sz_decimals[110_000 + i] for i, (name, _, _) in enumerate(XYZ_MARKETS)} == {
        name: sz_decimals for name, sz_decimals, _ in XYZ_MARKETS
    }
    assert (info.name_to_asset("BTC"), info.name_to_asset("ETH")) == (0, 1)


def test_perp_dexs_lists_the_first_dex_as_null_then_xyz_and_flx(info: Info) -> None:
    xyz_coins = ["xyz:CL", "xyz:GOLD", "xyz:NVDA", "xyz:PLATINUM", "xyz:SILVER", "xyz:TSLA", "xyz:XYZ100"]
    # amounts as the real perpDexs writes them: "10000000.0", "1.0"
    xyz_caps = [
        "10000000.0",
        "25000000.0",
        "50000000.0",
        "5000000.0",
        "10000000.0",
        "50000000.0",
        "50000000.0",
    ]
    assert info.post("/info", {"type": "perpDexs"}) == [
        None,
        {
            "name": "xyz",
            "fullName": "XYZ",
            "deployer": "0x5e89b26d8d66da9888c835c9bfcc2aa51813e152",
            "oracleUpdater": None,
            "feeRecipient": None,
            "assetToStreamingOiCap": [[coin, cap] for coin, cap in zip(xyz_coins, xyz_caps, strict=True)],
            "assetToFundingMultiplier": [[coin, "1.0"] for coin in xyz_coins],
        },
        {
            "name": "flx",
            "fullName": "Felix Exchange",
            "deployer": "0xf1e0000000000000000000000000000000000001",
            "oracleUpdater": None,
            "feeRecipient": None,
            "assetToStreamingOiCap": [["flx:COIN", "5000000.0"], ["flx:CRCL", "2000000.0"]],
            "assetToFundingMultiplier": [["flx:COIN", "1.0"], ["flx:CRCL", "1.0"], ["flx:OLDX", "1.0"]],
        },
    ]


def test_perp_dexs_writes_whole_numbers_as_the_real_exchange_does(info: Info) -> None:
    xyz = info.post("/info", {"type": "perpDexs"})[1]
    assert xyz["assetToStreamingOiCap"][0] == ["xyz:CL", "10000000.0"]
    assert xyz["assetToFundingMultiplier"][0] == ["xyz:CL", "1.0"]


def test_clearinghouse_state_writes_zeros_as_the_real_exchange_does(info: Info) -> None:
    zeros = {"accountValue": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "0.0", "totalMarginUsed": "0.0"}
    assert without_time(info.user_state(UNFUNDED, dex="xyz")) == {
        "assetPositions": [],
        "marginSummary": zeros,
        "crossMarginSummary": zeros,
        "crossMaintenanceMarginUsed": "0.0",
        "withdrawable": "0.0",
    }


def test_l2_snapshot_has_the_real_shape_and_equals_the_raw_l2book(info: Info, calm_book: CalmBook) -> None:
    raw_request = {"type": "l2Book", "coin": TSLA, "nSigFigs": None, "mantissa": None}
    book, raw = calm_book.run(lambda: (info.l2_snapshot(TSLA), info.post("/info", raw_request)))

    assert set(book) == {"coin", "time", "levels"}
    assert book["coin"] == TSLA
    assert isinstance(book["time"], int)
    assert raw == {**book, "time": raw["time"]}
    bids, asks = book["levels"]
    for side in (bids, asks):
        assert 5 <= len(side) <= 20  # the makers' 5 levels (plus any resting user order)
        for level in side:
            assert set(level) == {"px", "sz", "n"}
            px, sz = Decimal(level["px"]), Decimal(level["sz"])
            assert (wire(px), wire(sz)) == (level["px"], level["sz"])
            assert on_tick(px, ROUND_FLOOR) == px
            assert sz > 0 and sz == sz.quantize(Decimal(1).scaleb(-TSLA_SZ_DECIMALS))
            assert isinstance(level["n"], int) and level["n"] >= 1
    bid_prices = [Decimal(level["px"]) for level in bids]
    ask_prices = [Decimal(level["px"]) for level in asks]
    assert bid_prices == sorted(bid_prices, reverse=True) and len(set(bid_prices)) == len(bids)
    assert ask_prices == sorted(ask_prices) and len(set(ask_prices)) == len(asks)
    assert bid_prices[0] < ask_prices[0]


def test_user_state_before_and_after_a_trade(info: Info, fresh_trader: Exchange, calm_book: CalmBook) -> None:
    assert without_time(info.user_state(FRESH, dex="xyz")) == flat_state(FUNDED_USDC)

    limit = through_the_ask(info.l2_snapshot(TSLA), "0.002")
    response = fresh_trader.order(TSLA, True, float(SIZE), float(limit), IOC)
    oid = oid_of(response, "filled")
    fills = fills_of(info, FRESH, oid)
    paid = sum((Decimal(f["px"]) * Decimal(f["sz"]) for f in fills), Decimal(0))
    assert response == order_ok(
        {"filled": {"totalSz": wire(SIZE), "avgPx": wire(computed_price(paid / SIZE)), "oid": oid}}
    )
    fees = [usdc(Decimal(f["px"]) * Decimal(f["sz"]) * TAKER_FEE_RATE) for f in fills]
    assert [f["fee"] for f in fills] == [wire(fee) for fee in fees]

    mark_before, state, mark_after = calm_book.run(
        lambda: (tsla_mark(info), info.user_state(FRESH, dex="xyz"), tsla_mark(info))
    )
    assert mark_before == mark_after
    assert without_time(state) == long_tsla_state(
        balance=FUNDED_USDC - sum(fees, Decimal(0)), szi=SIZE, entry=paid / SIZE, mark=mark_before
    )


# --------------------------------------------------------------------------------------------- orders


def test_ioc_buy_fills_at_the_prices_the_book_shows(
    info: Info, trader: Exchange, calm_book: CalmBook
) -> None:
    def buy_through_the_ask() -> tuple[Json, Decimal, Json]:
        book = info.l2_snapshot(TSLA)
        limit = through_the_ask(book, "0.0005")
        return book, limit, trader.order(TSLA, True, float(SIZE), float(limit), IOC)

    book, limit, response = calm_book.run(buy_through_the_ask)

    expected_fills = take_from(book["levels"][1], SIZE, limit)
    filled = sum((sz for _, sz in expected_fills), Decimal(0))
    paid = sum((px * sz for px, sz in expected_fills), Decimal(0))
    oid = oid_of(response, "filled")
    assert response == order_ok(
        {"filled": {"totalSz": wire(filled), "avgPx": wire(computed_price(paid / filled)), "oid": oid}}
    )
    assert [(f["px"], f["sz"], f["side"], f["crossed"]) for f in fills_of(info, TRADER, oid)] == [
        (wire(px), wire(sz), "B", True) for px, sz in expected_fills
    ]


def test_gtc_rests_is_cancelled_by_oid_and_a_second_cancel_fails(info: Info, trader: Exchange) -> None:
    px = far_below_bid(info.l2_snapshot(TSLA))
    response = trader.order(TSLA, True, float(SIZE), float(px), GTC)
    oid = oid_of(response, "resting")
    assert response == order_ok({"resting": {"oid": oid}})
    resting = [order for order in info.open_orders(TRADER, dex="xyz") if order["oid"] == oid]
    assert resting == [open_order(px, SIZE, oid, resting[0]["timestamp"] if resting else 0)]

    assert trader.cancel(TSLA, oid) == cancel_ok("success")
    assert trader.cancel(TSLA, oid) == cancel_ok({"error": CANCEL_MISSING})
    assert oid not in [order["oid"] for order in info.open_orders(TRADER, dex="xyz")]


def test_gtc_with_a_cloid_rests_and_is_cancelled_by_cloid(info: Info, trader: Exchange) -> None:
    cloid = Cloid.from_int(0x5D4_C10D)
    px = far_below_bid(info.l2_snapshot(TSLA))
    response = trader.order(TSLA, True, float(SIZE), float(px), GTC, cloid=cloid)
    oid = oid_of(response, "resting")
    assert response == order_ok({"resting": {"oid": oid, "cloid": cloid.to_raw()}})

    assert trader.cancel_by_cloid(TSLA, cloid) == cancel_ok("success")
    status = info.query_order_by_cloid(TRADER, cloid)
    order = status.get("order", {}).get("order", {})
    assert status == {
        "status": "order",
        "order": {
            "order": {
                **open_order(px, SIZE, oid, order.get("timestamp", 0)),
                "cloid": cloid.to_raw(),
                "isPositionTpsl": False,
                "isTrigger": False,
                "orderType": "Limit",
                "reduceOnly": False,
                "tif": "Gtc",
                "triggerCondition": "N/A",
                "triggerPx": "0.0",
                "children": [],
            },
            "status": "canceled",
            "statusTimestamp": status.get("order", {}).get("statusTimestamp", 0),
        },
    }
    assert trader.cancel_by_cloid(TSLA, cloid) == cancel_ok({"error": CANCEL_MISSING})


def test_alo_that_would_cross_is_rejected_with_the_bbo(
    info: Info, trader: Exchange, calm_book: CalmBook
) -> None:
    def post_only_at_the_ask() -> tuple[Json, Json, Json]:
        bid, ask = best_levels(info.l2_snapshot(TSLA))
        return bid, ask, trader.order(TSLA, True, float(SIZE), float(ask["px"]), ALO)

    bid, ask, response = calm_book.run(post_only_at_the_ask)
    assert response == order_ok(
        {"error": f"Post only order would have immediately matched, bbo was {bid['px']}@{ask['px']}."}
    )


def test_reduce_only_that_would_increase_the_position_is_rejected(info: Info, trader: Exchange) -> None:
    book = info.l2_snapshot(TSLA)
    position = tsla_position_size(info, TRADER)
    is_buy = position >= 0  # adds to a long (or opens one from flat); otherwise sell into the short
    px = far_below_bid(book) if is_buy else far_above_ask(book)
    response = trader.order(TSLA, is_buy, float(SIZE), float(px), GTC, reduce_only=True)
    assert response == order_ok({"error": "Reduce only order would increase position."})


def test_order_under_ten_dollars_is_rejected(info: Info, trader: Exchange) -> None:
    px = far_below_bid(info.l2_snapshot(TSLA))
    size = (Decimal(9) / px).quantize(Decimal(1).scaleb(-TSLA_SZ_DECIMALS), rounding=ROUND_FLOOR)
    assert 0 < px * size < 10
    response = trader.order(TSLA, True, float(size), float(px), GTC)
    assert response == order_ok({"error": "Order must have minimum value of $10."})


def test_price_with_too_many_significant_figures_is_rejected(info: Info, trader: Exchange) -> None:
    px = far_below_bid(info.l2_snapshot(TSLA)) + Decimal("0.001")  # e.g. 387.451: six significant figures
    assert on_tick(px, ROUND_FLOOR) != px
    response = trader.order(TSLA, True, float(SIZE), float(px), GTC)
    assert response == order_ok({"error": "Price must be divisible by tick size."})


def test_size_with_more_decimals_than_sz_decimals_is_rejected(info: Info, trader: Exchange) -> None:
    px = far_below_bid(info.l2_snapshot(TSLA))
    size = SIZE + Decimal("0.0001")  # 0.0501: four decimals for szDecimals 3
    response = trader.order(TSLA, True, float(size), float(px), GTC)
    assert response == order_ok({"error": errors_text.LOT})  # the simulator's text; the real one is unknown


# --------------------------------------------------------------------------------------------- signing


def test_tampered_signature_names_the_recovered_address(
    info: Info, trader: Exchange, nonces: NonceClock
) -> None:
    body = signed_order_body(trader, info, nonces, far_below_bid(info.l2_snapshot(TSLA)))
    price = body["action"]["orders"][0]["p"]
    tampered = copy.deepcopy(body)
    tampered["action"]["orders"][0]["p"] = price[:-1] + ("8" if price[-1] == "9" else str(int(price[-1]) + 1))
    recovered = recover_l1_signer(
        tampered["action"], body["signature"], nonce=body["nonce"], is_mainnet=False
    )
    assert recovered != TRADER

    response = info.post("/exchange", tampered)
    assert response == top_level_error(f"User or API Wallet {recovered} does not exist.")


def test_replayed_nonce_is_rejected(info: Info, trader: Exchange, nonces: NonceClock) -> None:
    body = signed_order_body(trader, info, nonces, far_below_bid(info.l2_snapshot(TSLA)))
    first = info.post("/exchange", body)
    oid = oid_of(first, "resting")
    assert first == order_ok({"resting": {"oid": oid}})

    assert info.post("/exchange", body) == top_level_error(f"Invalid nonce: duplicate nonce {body['nonce']}")
    assert trader.cancel(TSLA, oid) == cancel_ok("success")


def test_approved_agent_trades_for_its_master(info: Info, master: Exchange, sim_url: str) -> None:
    approval, agent_key = master.approve_agent()
    assert approval == DEFAULT_OK
    agent_wallet = Account.from_key(agent_key)
    agent = Exchange(agent_wallet, sim_url, account_address=MASTER, perp_dexs=PERP_DEXS)
    before = info.user_state(MASTER, dex="xyz")

    px = far_below_bid(info.l2_snapshot(TSLA))
    response = agent.order(TSLA, True, float(SIZE), float(px), GTC)
    oid = oid_of(response, "resting")
    assert response == order_ok({"resting": {"oid": oid}})
    orders = info.open_orders(MASTER, dex="xyz")
    assert orders == [open_order(px, SIZE, oid, orders[0]["timestamp"] if orders else 0)]
    assert info.open_orders(agent_wallet.address, dex="xyz") == []
    with_order = info.user_state(MASTER, dex="xyz")
    # the resting buy reserves px · size / leverage of the master's margin
    assert with_order["withdrawable"] == wire(usdc(Decimal(before["withdrawable"]) - px * SIZE / LEVERAGE))
    assert agent.cancel(TSLA, oid) == cancel_ok("success")
    assert info.open_orders(MASTER, dex="xyz") == []

    position_before = tsla_position_size(info, MASTER)
    response = agent.order(
        TSLA, True, float(SIZE), float(through_the_ask(info.l2_snapshot(TSLA), "0.002")), IOC
    )
    oid = oid_of(response, "filled")
    fills = fills_of(info, MASTER, oid)
    paid = sum((Decimal(f["px"]) * Decimal(f["sz"]) for f in fills), Decimal(0))
    assert response == order_ok(
        {"filled": {"totalSz": wire(SIZE), "avgPx": wire(computed_price(paid / SIZE)), "oid": oid}}
    )
    assert tsla_position_size(info, MASTER) == position_before + SIZE
    assert fills_of(info, agent_wallet.address, oid) == []


# --------------------------------------------------------------------------------------------- WebSocket


def test_websocket_bbo_subscription_receives_frames(
    ws_info: Info, info: Info, trader: Exchange, calm_book: CalmBook
) -> None:
    frames: queue.Queue[Json] = queue.Queue()
    placed: list[int] = []

    def improve_the_bid() -> tuple[Json, Decimal]:
        bid, ask = best_levels(info.l2_snapshot(TSLA))
        bid_px = Decimal(bid["px"])
        px = bid_px + tick_at(bid_px)
        response = trader.order(TSLA, True, float(SIZE), float(px), ALO)
        placed.append(oid_of(response, "resting"))
        assert response == order_ok({"resting": {"oid": placed[-1]}})
        return ask, px

    ws_info.subscribe({"type": "bbo", "coin": TSLA}, frames.put)
    frame = first_message(frames, lambda _: True, WS_TIMEOUT_S)
    assert set(frame) == {"channel", "data"} and frame["channel"] == "bbo"
    assert set(frame["data"]) == {"coin", "time", "bbo"} and frame["data"]["coin"] == TSLA
    assert isinstance(frame["data"]["time"], int)
    bid, ask = frame["data"]["bbo"]
    assert set(bid) == set(ask) == {"px", "sz", "n"}
    assert Decimal(bid["px"]) < Decimal(ask["px"])

    try:
        # our own post-only bid one tick above the best bid becomes the new bbo
        ask, px = calm_book.run(improve_the_bid)
        frame = first_message(
            frames, lambda f: (f["data"]["bbo"][0] or {}).get("px") == wire(px), WS_TIMEOUT_S
        )
        assert frame == {
            "channel": "bbo",
            "data": {
                "coin": TSLA,
                "time": frame["data"]["time"],
                "bbo": [{"px": wire(px), "sz": wire(SIZE), "n": 1}, ask],
            },
        }
    finally:
        for oid in placed:
            assert trader.cancel(TSLA, oid) == cancel_ok("success")


def test_websocket_user_fills_sends_a_snapshot_then_streams_new_fills(
    ws_info: Info, info: Info, trader: Exchange
) -> None:
    messages: queue.Queue[Json] = queue.Queue()
    ws_info.subscribe({"type": "userFills", "user": TRADER}, messages.put)
    snapshot = first_message(messages, lambda _: True, WS_TIMEOUT_S)
    assert snapshot == {
        "channel": "userFills",
        "data": {"isSnapshot": True, "user": TRADER, "fills": info.user_fills(TRADER)},
    }

    limit = through_the_ask(info.l2_snapshot(TSLA), "0.002")
    response = trader.order(TSLA, True, float(SIZE), float(limit), IOC)
    oid = oid_of(response, "filled")
    streamed: list[Json] = []
    while sum((Decimal(f["sz"]) for f in streamed), Decimal(0)) < SIZE:
        message = first_message(
            messages, lambda m: any(f["oid"] == oid for f in m["data"]["fills"]), WS_TIMEOUT_S
        )
        assert message == {
            "channel": "userFills",
            "data": {"user": TRADER, "fills": message["data"]["fills"]},
        }
        streamed += message["data"]["fills"]
    assert streamed == fills_of(info, TRADER, oid)
