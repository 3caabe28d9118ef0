"""POST /info: the read-only views of the simulated exchange (protocol reference §6), and simAudit."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

from hip3.core.market import MarginMode
from hip3.core.rounding import to_wire
from hip3.sim import errors_text
from hip3.sim.book import RestingOrder
from hip3.sim.engine_exchange import Market, OrderRecord, TradingEngine, UserState, order_summary
from hip3.sim.ledger import ZERO, amount_wire, usdc, wire_price
from hip3.sim.scenario import DexDef

MAX_FILLS: Final = 2000
BASE_REQUEST_CAP: Final = 10_000
_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
Reply = tuple[int, object]


class InfoRefused(Exception):
    """The request cannot be answered; carries the HTTP status and body to send instead."""

    def __init__(self, status: int, body: object) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def malformed(detail: str) -> InfoRefused:
    return InfoRefused(422, f"{errors_text.DESERIALIZE_FAILURE}: {detail}")


def _field(request: Mapping[str, Any], name: str) -> Any:
    if name not in request:
        raise malformed(f"missing field `{name}`")
    return request[name]


def _user_address(request: Mapping[str, Any]) -> str:
    user = _field(request, "user")
    if not isinstance(user, str) or _ADDRESS.fullmatch(user) is None:
        raise malformed("field `user`: expected an address")
    return user.lower()


def _int_field(request: Mapping[str, Any], name: str) -> int:
    value = request.get(name)
    if type(value) is not int:
        raise malformed(f"field `{name}`: expected an integer")
    return value


class InfoHandler:
    def __init__(self, core: TradingEngine, *, internal_errors: Callable[[], int]) -> None:
        self.core = core
        self._internal_errors = internal_errors
        self._handlers: dict[str, Callable[[Mapping[str, Any]], object]] = {
            "meta": lambda r: self.meta(self._dex(r)),
            "spotMeta": lambda r: {"universe": [], "tokens": []},
            "metaAndAssetCtxs": self._meta_and_asset_ctxs,
            "perpDexs": lambda r: self.perp_dexs(),
            "allMids": lambda r: self.core.mids(self._dex(r)),
            "clearinghouseState": lambda r: self.clearinghouse_state(_user_address(r), self._dex(r)),
            "openOrders": lambda r: self._open_orders(r, frontend=False),
            "frontendOpenOrders": lambda r: self._open_orders(r, frontend=True),
            "userFills": self._user_fills,
            "userFillsByTime": self._user_fills_by_time,
            "orderStatus": self._order_status,
            "l2Book": self._l2_book,
            "userRateLimit": self._user_rate_limit,
            "simAudit": lambda r: self.audit(_user_address(r)),
        }

    def handle(self, request: object) -> Reply:
        if not isinstance(request, Mapping):
            raise malformed("expected a JSON object")
        handler = self._handlers.get(request.get("type"))  # type: ignore[arg-type]
        if handler is None:
            raise malformed(f"unknown variant `{request.get('type')}`")
        return 200, handler(request)

    def _dex(self, request: Mapping[str, Any]) -> str:
        dex = request.get("dex")
        if dex is None:
            return ""
        if not isinstance(dex, str):
            raise malformed("field `dex`: expected a string")
        if all(d.name != dex for d in self.core.scenario.dexes):
            raise InfoRefused(500, None)
        return dex

    def _markets(self, dex: str) -> list[Market]:
        return [m for m in self.core.markets.values() if m.dex.name == dex]

    # ------------------------------------------------------------------ market data

    def meta(self, dex: str) -> dict[str, Any]:
        markets = self._markets(dex)
        table_ids = sorted({m.spec.max_leverage for m in markets})
        return {
            "universe": [_universe_entry(m) for m in markets],
            "marginTables": [[i, _margin_table(i)] for i in table_ids],
            "collateralToken": 0,
        }

    def _meta_and_asset_ctxs(self, request: Mapping[str, Any]) -> object:
        dex = self._dex(request)
        return [self.meta(dex), [self.core.asset_ctx(m) for m in self._markets(dex)]]

    def perp_dexs(self) -> list[object]:
        out: list[object] = []
        for index, dex in enumerate(self.core.scenario.dexes):
            out.append(None if index == 0 else self._perp_dex(dex))
        return out

    def _perp_dex(self, dex: DexDef) -> dict[str, Any]:
        markets = sorted(self._markets(dex.name), key=lambda m: m.coin)
        caps = [[m.coin, amount_wire(m.definition.oi_cap_usd)] for m in markets if m.definition.oi_cap_usd]
        return {
            "name": dex.name,
            "fullName": dex.full_name,
            "deployer": dex.deployer,
            "oracleUpdater": None,
            "feeRecipient": None,
            "assetToStreamingOiCap": caps,
            "assetToFundingMultiplier": [
                [m.coin, amount_wire(m.definition.funding_multiplier)] for m in markets
            ],
        }

    def _l2_book(self, request: Mapping[str, Any]) -> object:
        market = self.core.markets.get(_field(request, "coin"))
        return None if market is None else self.core.l2_book(market)

    # ------------------------------------------------------------------ user state

    def clearinghouse_state(self, address: str, dex: str) -> dict[str, Any]:
        user = self.core.user(address)
        markets = self._markets(dex)
        positions = [] if user is None else [p for m in markets if (p := self._position(user, m)) is not None]
        balance = ZERO if user is None else user.account.balance
        upnl = sum((Decimal(p["unrealizedPnl"]) for p in positions), ZERO)
        ntl = sum((Decimal(p["positionValue"]) for p in positions), ZERO)
        margin = sum((Decimal(p["marginUsed"]) for p in positions), ZERO)
        signed_ntl = sum((Decimal(p["szi"]) * self.core.markets[p["coin"]].mark_px for p in positions), ZERO)
        value = balance + upnl
        order_margin = ZERO if user is None else self.core.order_margin(user)
        return {
            "assetPositions": [{"type": "oneWay", "position": p} for p in positions],
            "marginSummary": _summary(value, ntl, value - signed_ntl, margin),
            "crossMarginSummary": _summary(value - margin, ZERO, value - margin, ZERO),
            "crossMaintenanceMarginUsed": "0.0",
            "withdrawable": amount_wire(usdc(max(ZERO, value - margin - order_margin))),
            "time": self.core.now_ms(),
        }

    def _position(self, user: UserState, market: Market) -> dict[str, Any] | None:
        pos = user.account.positions.get(market.coin)
        if pos is None or pos.szi == 0:
            return None
        leverage = self.core.leverage(user, market)
        value = abs(pos.szi) * market.mark_px
        upnl = pos.szi * (market.mark_px - pos.entry_px)
        isolated_margin = abs(pos.szi) * pos.entry_px / leverage
        margin_used = value / leverage
        return {
            "coin": market.coin,
            "szi": to_wire(pos.szi),
            "entryPx": to_wire(wire_price(pos.entry_px)),
            "positionValue": amount_wire(usdc(value)),
            "unrealizedPnl": amount_wire(usdc(upnl)),
            "returnOnEquity": amount_wire(usdc(upnl / isolated_margin)),
            "liquidationPx": None,
            "marginUsed": amount_wire(usdc(margin_used)),
            "maxLeverage": market.spec.max_leverage,
            "leverage": {
                "type": "isolated",
                "value": leverage,
                "rawUsd": amount_wire(usdc(isolated_margin - pos.szi * pos.entry_px)),
            },
            "cumFunding": {"allTime": "0.0", "sinceOpen": "0.0", "sinceChange": "0.0"},
        }

    def _open_orders(self, request: Mapping[str, Any], *, frontend: bool) -> list[dict[str, Any]]:
        user = self.core.user(_user_address(request))
        dex = self._dex(request)
        if user is None:
            return []
        orders = sorted(user.open_orders.values(), key=lambda o: o.oid, reverse=True)
        out = []
        for order in orders:
            if self.core.markets[order.coin].dex.name == dex:
                out.append(_frontend_order(order) if frontend else order_summary(order))
        return out

    def _user_fills(self, request: Mapping[str, Any]) -> list[dict[str, Any]]:
        user = self.core.user(_user_address(request))
        if user is None:
            return []
        return list(reversed(user.fills))[:MAX_FILLS]

    def _user_fills_by_time(self, request: Mapping[str, Any]) -> list[dict[str, Any]]:
        address = _user_address(request)
        start = _int_field(request, "startTime")
        end = request.get("endTime")
        if end is not None and type(end) is not int:
            raise malformed("field `endTime`: expected an integer")
        user = self.core.user(address)
        if user is None:
            return []
        chosen = [f for f in user.fills if f["time"] >= start and (end is None or f["time"] <= end)]
        return chosen[:MAX_FILLS]

    def _order_status(self, request: Mapping[str, Any]) -> object:
        user = self.core.user(_user_address(request))
        key = _field(request, "oid")
        if type(key) is not int and not isinstance(key, str):
            raise malformed("field `oid`: expected an integer or a cloid")
        if user is None:
            return {"status": "unknownOid"}
        oid = key if isinstance(key, int) else user.cloids.get(key.lower())
        record = None if oid is None else user.records.get(oid)
        if record is None:
            return {"status": "unknownOid"}
        return {"status": "order", "order": _order_status_body(record)}

    def _user_rate_limit(self, request: Mapping[str, Any]) -> object:
        user = self.core.user(_user_address(request))
        volume = ZERO if user is None else user.cum_volume
        used = 0 if user is None else user.requests_used
        return {
            "cumVlm": to_wire(usdc(volume)),
            "nRequestsUsed": used,
            "nRequestsCap": BASE_REQUEST_CAP + int(volume),
            "nRequestsSurplus": 0,
        }

    # ------------------------------------------------------------------ simAudit

    def audit(self, address: str) -> dict[str, Any]:
        user = self.core.user(address)
        markets: dict[str, Any] = {}
        consistent = True
        if user is not None:
            for coin, audit in sorted(user.audit.items()):
                size = user.account.size(coin)
                consistent = consistent and audit.fill_sum == size
                markets[coin] = {
                    "max_position_notional": to_wire(usdc(audit.max_position_notional)),
                    "max_open_order_notional": to_wire(usdc(audit.max_open_order_notional)),
                    "orders": audit.orders,
                    "fills": audit.fills,
                    "position": to_wire(size),
                }
        return {
            "user": address,
            "markets": markets,
            "orders": sum(m["orders"] for m in markets.values()),
            "fills": sum(m["fills"] for m in markets.values()),
            "rejects": {} if user is None else dict(sorted(user.rejects.items())),
            "nonce_rejects": 0 if user is None else user.nonce_rejects,
            "ledger_consistent": consistent,
            "internal_errors": self._internal_errors(),
        }


def _universe_entry(market: Market) -> dict[str, Any]:
    spec = market.spec
    entry: dict[str, Any] = {
        "name": market.coin,
        "szDecimals": spec.sz_decimals,
        "maxLeverage": spec.max_leverage,
        "marginTableId": spec.margin_table_id,
    }
    if spec.only_isolated:
        entry["onlyIsolated"] = True
    if spec.margin_mode is not MarginMode.NORMAL:
        entry["marginMode"] = spec.margin_mode.value
    if spec.growth_mode:
        entry["growthMode"] = "enabled"
    if spec.is_delisted:
        entry["isDelisted"] = True
    return entry


def _margin_table(max_leverage: int) -> dict[str, Any]:
    return {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": max_leverage}]}


def _summary(value: Decimal, ntl: Decimal, raw: Decimal, margin: Decimal) -> dict[str, str]:
    return {
        "accountValue": amount_wire(usdc(value)),
        "totalNtlPos": amount_wire(usdc(ntl)),
        "totalRawUsd": amount_wire(usdc(raw)),
        "totalMarginUsed": amount_wire(usdc(margin)),
    }


def _frontend_order(order: RestingOrder) -> dict[str, Any]:
    body = order_summary(order)
    body.update(
        {
            "isPositionTpsl": False,
            "isTrigger": False,
            "orderType": "Limit",
            "reduceOnly": order.reduce_only,
            "tif": order.tif,
            "triggerCondition": "N/A",
            "triggerPx": "0.0",
            "children": [],
            "cloid": order.cloid,
        }
    )
    return body


def _order_status_body(record: OrderRecord) -> dict[str, Any]:
    return {
        "order": _frontend_order(record.order),
        "status": record.status,
        "statusTimestamp": record.status_timestamp,
    }
