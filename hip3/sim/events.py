"""What the simulated exchange tells its listeners (the WebSocket layer, tests, the audit).

Every payload is already in the exchange's wire shape, so the WebSocket layer only routes it.
"""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class BookChanged:
    """The book of `coin` changed: `book` is the l2Book payload {coin, time, levels}, `bbo` the bbo one."""

    coin: str
    book: dict[str, Any]
    bbo: dict[str, Any] | None  # None when the best bid and ask are unchanged


@attrs.frozen
class TradesPrinted:
    coin: str
    trades: list[dict[str, Any]]  # trades channel elements {coin, side, px, sz, hash, time, tid, users}


@attrs.frozen
class AssetCtxChanged:
    coin: str
    ctx: dict[str, Any]  # activeAssetCtx payload {coin, ctx: {...}}


@attrs.frozen
class MidsChanged:
    dex: str
    mids: dict[str, str]  # allMids payload's "mids" for one dex


@attrs.frozen
class OrderUpdated:
    user: str
    update: dict[str, Any]  # orderUpdates element {order: {...}, status, statusTimestamp}


@attrs.frozen
class UserFilled:
    user: str
    fill: dict[str, Any]  # WsFill {coin, px, sz, side, time, startPosition, dir, closedPnl, hash, oid, ...}


SimEvent = BookChanged | TradesPrinted | AssetCtxChanged | MidsChanged | OrderUpdated | UserFilled
