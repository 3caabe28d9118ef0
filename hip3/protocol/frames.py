"""WebSocket frames from the exchange, parsed into typed values (protocol reference §7).

`parse_frame` never raises. Anything it cannot read becomes `Malformed(kind, reason)`, where kind is the
channel ("bbo", "orderUpdates", ...), "json" (not JSON), "shape" (JSON but not a channel frame) or
"unknown-channel:<name>", so the connection can count by kind and log once per kind.

Rules for every channel:
- prices, sizes and amounts are numeric strings read as finite Decimals (a JSON number is refused, since
  orjson would have read it as a float); integers must be JSON integers (not booleans, not floats);
- keys the bot does not use are ignored, since the exchange adds fields;
- user addresses are lower-cased; coins are kept as sent ("xyz:TSLA"), they are case-sensitive names;
- a cloid that is present but not `0x` + 32 hex digits makes its element malformed (an order update or fill
  whose cloid we cannot read could be matched to no order or the wrong one, so it is not passed on half-read).

orderUpdates and userFills carry several independent elements: a bad element is skipped and counted in the
message's `malformed`, the rest are parsed (predecessor W-002). Other channels are all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
import orjson

from hip3.core.order import Cloid, Side
from hip3.protocol.responses import (
    PARSE_ERRORS,
    WireError,
    boolean,
    cloid,
    decimal,
    decimal_value,
    integer,
    mapping,
    optional_decimal,
    reason_of,
    short,
    text,
)

GREETING_TEXT = "Websocket connection established."
_GREETING_BYTES = GREETING_TEXT.encode()
_MAX_CHANNEL_NAME = 64  # bounds the number of distinct "unknown-channel:<name>" kinds a peer can make us log

SubscriptionKey = tuple[str, str]

# ------------------------------------------------------------------------------------------ frame types


@attrs.frozen(slots=True)
class Level:
    px: Decimal
    sz: Decimal
    n: int


@attrs.frozen(slots=True)
class Greeting:
    """The plain text frame the server sends on connect."""


@attrs.frozen(slots=True)
class Pong:
    """{"channel":"pong"}, the answer to {"method":"ping"}."""


@attrs.frozen(slots=True)
class SubscriptionAck:
    method: str  # "subscribe" | "unsubscribe"
    subscription: Mapping[str, Any]
    key: SubscriptionKey


@attrs.frozen(slots=True)
class ErrorFrame:
    text: str


@attrs.frozen(slots=True)
class PostResponse:
    """The answer to a post request; an "action" payload is read with `parse_exchange_response`."""

    request_id: int
    kind: str  # "info" | "action" | "error"
    payload: Any


@attrs.frozen(slots=True)
class Bbo:
    coin: str
    time_ms: int
    bid: Level | None
    ask: Level | None


@attrs.frozen(slots=True)
class L2Book:
    coin: str
    time_ms: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@attrs.frozen(slots=True)
class AssetCtx:
    coin: str
    oracle_px: Decimal
    mark_px: Decimal
    mid_px: Decimal | None
    open_interest: Decimal
    funding: Decimal
    premium: Decimal | None
    day_ntl_vlm: Decimal
    prev_day_px: Decimal | None
    impact_bid: Decimal | None
    impact_ask: Decimal | None


@attrs.frozen(slots=True)
class AllMids:
    mids: Mapping[str, Decimal]


@attrs.frozen(slots=True)
class Trade:
    coin: str
    side: Side
    px: Decimal
    sz: Decimal
    time_ms: int
    tid: int
    hash: str
    users: tuple[str, ...]


@attrs.frozen(slots=True)
class Trades:
    trades: tuple[Trade, ...]


@attrs.frozen(slots=True)
class OrderUpdate:
    coin: str
    side: Side
    limit_px: Decimal
    sz: Decimal
    orig_sz: Decimal
    oid: int
    cloid: Cloid | None
    timestamp_ms: int
    status: str
    status_timestamp_ms: int


@attrs.frozen(slots=True)
class OrderUpdates:
    updates: tuple[OrderUpdate, ...]
    malformed: int


@attrs.frozen(slots=True)
class Fill:
    coin: str
    px: Decimal
    sz: Decimal
    side: Side
    time_ms: int
    start_position: Decimal
    dir: str
    closed_pnl: Decimal
    hash: str
    oid: int
    crossed: bool
    fee: Decimal
    tid: int
    fee_token: str
    cloid: Cloid | None


@attrs.frozen(slots=True)
class UserFills:
    user: str
    is_snapshot: bool
    fills: tuple[Fill, ...]
    malformed: int


@attrs.frozen(slots=True)
class Malformed:
    kind: str
    reason: str


Frame = (
    Greeting
    | Pong
    | SubscriptionAck
    | ErrorFrame
    | PostResponse
    | Bbo
    | L2Book
    | AssetCtx
    | AllMids
    | Trades
    | OrderUpdates
    | UserFills
    | Malformed
)

_GREETING = Greeting()
_PONG = Pong()

# ------------------------------------------------------------------------------------------ entry point


def parse_frame(text: str | bytes) -> Frame:
    """Parse one WebSocket text frame; never raises."""
    if text in (GREETING_TEXT, _GREETING_BYTES):
        return _GREETING
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return Malformed("json", str(exc)[:200])
    if type(message) is not dict:
        return Malformed("shape", f"a frame must be a JSON object, got {short(message)}")
    channel = message.get("channel")
    if type(channel) is not str:
        return Malformed("shape", f"channel must be a string, got {short(channel)}")
    parser = _PARSERS.get(channel)
    if parser is None:
        return Malformed(f"unknown-channel:{channel[:_MAX_CHANNEL_NAME]}", "no parser for this channel")
    try:
        return parser(message)
    except PARSE_ERRORS as exc:
        return Malformed(channel, reason_of(exc))


# ------------------------------------------------------------------------------------------ subscriptions

_COIN_SUBSCRIPTIONS = frozenset({"bbo", "l2Book", "trades", "activeAssetCtx"})
_USER_SUBSCRIPTIONS = frozenset({"orderUpdates", "userFills"})


def subscription_key(subscription: Mapping[str, Any]) -> SubscriptionKey | None:
    """The identity of a subscription: (type, coin | lower-case user | dex); None if unknown or invalid.

    Both the declared subscription and its ack go through here, so they meet on the same key whatever the case
    of the user address. Options that do not change the feed's identity (l2Book nSigFigs, userFills
    aggregateByTime) are not part of the key.
    """
    kind = subscription.get("type")
    if type(kind) is not str:
        return None
    if kind in _COIN_SUBSCRIPTIONS:
        coin = subscription.get("coin")
        return (kind, coin) if type(coin) is str and coin else None
    if kind in _USER_SUBSCRIPTIONS:
        user = subscription.get("user")
        return (kind, user.lower()) if type(user) is str and user else None
    if kind == "allMids":
        dex = subscription.get("dex")
        if dex is None:
            return ("allMids", "")
        return ("allMids", dex) if type(dex) is str else None
    return None


# ------------------------------------------------------------------------------------------ control frames


def _pong(_message: dict[str, Any]) -> Pong:
    return _PONG


def _error(message: dict[str, Any]) -> ErrorFrame:
    return ErrorFrame(text(message, "data"))


def _subscription_ack(message: dict[str, Any]) -> SubscriptionAck:
    data = mapping(message["data"], "data")
    if "subscription" in data:
        method = data.get("method")
        subscription = mapping(data["subscription"], "subscription")
    else:  # flat fallback (W-001): data is the subscription itself
        method, subscription = "subscribe", data
    if method not in ("subscribe", "unsubscribe"):
        raise WireError(f"method must be 'subscribe' or 'unsubscribe', got {short(method)}")
    key = subscription_key(subscription)
    if key is None:
        raise WireError(f"unknown or invalid subscription {short(subscription)}")
    return SubscriptionAck(method, subscription, key)


_POST_KINDS = frozenset({"info", "action", "error"})


def _post(message: dict[str, Any]) -> PostResponse:
    # A post answer we cannot read is Malformed, not an "error" PostResponse: the action's outcome is
    # unknown, which the caller handles like a timeout (reconcile); "error" means it was not processed.
    data = mapping(message["data"], "data")
    response = mapping(data["response"], "response")
    kind = response["type"]
    if kind not in _POST_KINDS:
        raise WireError(f"post response type must be info, action or error, got {short(kind)}")
    return PostResponse(integer(data, "id"), kind, response["payload"])


# ------------------------------------------------------------------------------------------ market data


def _level(raw: Any) -> Level:
    level = mapping(raw, "level")
    return Level(decimal(level, "px"), decimal(level, "sz"), integer(level, "n"))


def _optional_level(raw: Any) -> Level | None:
    return None if raw is None else _level(raw)


def _bbo(message: dict[str, Any]) -> Bbo:
    data = mapping(message["data"], "data")
    bid, ask = _pair(data["bbo"], "bbo")
    return Bbo(text(data, "coin"), integer(data, "time"), _optional_level(bid), _optional_level(ask))


def _pair(value: Any, what: str) -> tuple[Any, Any]:
    if type(value) is not list or len(value) != 2:
        raise WireError(f"{what} must be a list of two, got {short(value)}")
    return value[0], value[1]


def _l2_book(message: dict[str, Any]) -> L2Book:
    data = mapping(message["data"], "data")
    bids, asks = _pair(data["levels"], "levels")
    return L2Book(text(data, "coin"), integer(data, "time"), _levels(bids), _levels(asks))


def parse_l2_book_answer(answer: Any) -> L2Book | Malformed:
    """An /info l2Book answer, which has the l2Book frame's data shape; never raises."""
    try:
        return _l2_book({"data": answer})
    except PARSE_ERRORS as exc:
        return Malformed("l2Book", reason_of(exc))


def _levels(raw: Any) -> tuple[Level, ...]:
    if type(raw) is not list:
        raise WireError(f"a book side must be a list, got {short(raw)}")
    return tuple(map(_level, raw))


def _asset_ctx(message: dict[str, Any]) -> AssetCtx:
    data = mapping(message["data"], "data")
    ctx = mapping(data["ctx"], "ctx")
    impact = ctx.get("impactPxs")
    impact_bid, impact_ask = (None, None) if impact is None else _pair(impact, "impactPxs")
    return AssetCtx(
        coin=text(data, "coin"),
        oracle_px=decimal(ctx, "oraclePx"),
        mark_px=decimal(ctx, "markPx"),
        mid_px=optional_decimal(ctx, "midPx"),
        open_interest=decimal(ctx, "openInterest"),
        funding=decimal(ctx, "funding"),
        premium=optional_decimal(ctx, "premium"),
        day_ntl_vlm=decimal(ctx, "dayNtlVlm"),
        prev_day_px=optional_decimal(ctx, "prevDayPx"),
        impact_bid=None if impact_bid is None else decimal_value(impact_bid, "impactPxs[0]"),
        impact_ask=None if impact_ask is None else decimal_value(impact_ask, "impactPxs[1]"),
    )


def _all_mids(message: dict[str, Any]) -> AllMids:
    mids = mapping(mapping(message["data"], "data")["mids"], "mids")
    return AllMids({coin: decimal(mids, coin) for coin in mids})


def _trade(raw: Any) -> Trade:
    trade = mapping(raw, "trade")
    users = trade["users"]
    if type(users) is not list or any(type(user) is not str for user in users):
        raise WireError(f"users must be a list of addresses, got {short(users)}")
    return Trade(
        coin=text(trade, "coin"),
        side=Side.from_wire(trade["side"]),
        px=decimal(trade, "px"),
        sz=decimal(trade, "sz"),
        time_ms=integer(trade, "time"),
        tid=integer(trade, "tid"),
        hash=text(trade, "hash"),
        users=tuple(user.lower() for user in users),
    )


def _trades(message: dict[str, Any]) -> Trades:
    data = message["data"]
    if type(data) is not list:
        raise WireError(f"trades data must be a list, got {short(data)}")
    return Trades(tuple(map(_trade, data)))


# ------------------------------------------------------------------------------------------ user data


def _each_counted(raw: list[Any], read: Callable[[Any], Any]) -> tuple[tuple[Any, ...], int]:
    """Read every element, skipping the bad ones; returns what was read and how many were skipped."""
    parsed = []
    for element in raw:
        try:
            parsed.append(read(element))
        except PARSE_ERRORS:
            continue
    return tuple(parsed), len(raw) - len(parsed)


def _order_update(raw: Any) -> OrderUpdate:
    element = mapping(raw, "order update")
    order = mapping(element["order"], "order")
    limit_px = decimal(order, "limitPx") if "limitPx" in order else decimal(order, "px")  # W-002: px alias
    return OrderUpdate(
        coin=text(order, "coin"),
        side=Side.from_wire(order["side"]),
        limit_px=limit_px,
        sz=decimal(order, "sz"),
        orig_sz=decimal(order, "origSz"),
        oid=integer(order, "oid"),
        cloid=cloid(order),
        timestamp_ms=integer(order, "timestamp"),
        status=text(element, "status"),
        status_timestamp_ms=integer(element, "statusTimestamp"),
    )


def _order_updates(message: dict[str, Any]) -> OrderUpdates:
    data = message["data"]
    if type(data) is dict:  # a single update not wrapped in a list (W-002)
        data = [data]
    elif type(data) is not list:
        raise WireError(f"orderUpdates data must be a list or an object, got {short(data)}")
    updates, malformed = _each_counted(data, _order_update)
    return OrderUpdates(updates, malformed)


def _fill(raw: Any) -> Fill:
    fill = mapping(raw, "fill")
    return Fill(
        coin=text(fill, "coin"),
        px=decimal(fill, "px"),
        sz=decimal(fill, "sz"),
        side=Side.from_wire(fill["side"]),
        time_ms=integer(fill, "time"),
        start_position=decimal(fill, "startPosition"),
        dir=text(fill, "dir"),
        closed_pnl=decimal(fill, "closedPnl"),
        hash=text(fill, "hash"),
        oid=integer(fill, "oid"),
        crossed=boolean(fill, "crossed"),
        fee=decimal(fill, "fee"),
        tid=integer(fill, "tid"),
        fee_token=text(fill, "feeToken"),
        cloid=cloid(fill),
    )


def _user_fills(message: dict[str, Any]) -> UserFills:
    data = mapping(message["data"], "data")
    is_snapshot = boolean(data, "isSnapshot") if "isSnapshot" in data else False  # absent on stream messages
    raw_fills = data["fills"]
    if type(raw_fills) is not list:
        raise WireError(f"fills must be a list, got {short(raw_fills)}")
    fills, malformed = _each_counted(raw_fills, _fill)
    return UserFills(text(data, "user").lower(), is_snapshot, fills, malformed)


def parse_fill_list(user: str, raw: Any) -> UserFills:
    """The list an /info userFills or userFillsByTime answer holds, as a stream message (not a snapshot):
    handed to the tracker, its fills are deduplicated by tid like any other."""
    if type(raw) is not list:
        return UserFills(user.lower(), False, (), 1)
    fills, malformed = _each_counted(raw, _fill)
    return UserFills(user.lower(), False, fills, malformed)


_PARSERS: dict[str, Callable[[dict[str, Any]], Frame]] = {
    "bbo": _bbo,
    "activeAssetCtx": _asset_ctx,
    "l2Book": _l2_book,
    "trades": _trades,
    "allMids": _all_mids,
    "orderUpdates": _order_updates,
    "userFills": _user_fills,
    "post": _post,
    "subscriptionResponse": _subscription_ack,
    "pong": _pong,
    "error": _error,
}
