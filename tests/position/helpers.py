"""Builders for tracker tests: orders, fills and order updates as the parser would produce them."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hip3.core.order import Cloid, Side, Tif
from hip3.position.model import PendingOrder
from hip3.protocol.messages import Fill, OrderUpdate, OrderUpdates, UserFills

TSLA, SILVER = "xyz:TSLA", "xyz:SILVER"
USER = "0x14791697260e4c9a71f18484c9f997b308e59325"
_tids = itertools.count(1)


def order(
    coin: str = TSLA, side: Side = Side.BUY, size: str = "0.1", px: str = "430", *, reduce_only: bool = False
) -> PendingOrder:
    return PendingOrder(
        cloid=Cloid.new(),
        coin=coin,
        asset=110000,
        side=side,
        size=Decimal(size),
        limit_px=Decimal(px),
        tif=Tif.IOC,
        reduce_only=reduce_only,
        registered_at=0.0,
    )


def fill(
    oid: int, size: str, px: str, *, coin: str = TSLA, side: Side = Side.BUY, tid: int | None = None
) -> Fill:
    return Fill(
        coin=coin,
        px=Decimal(px),
        sz=Decimal(size),
        side=side,
        time_ms=0,
        start_position=Decimal(0),
        dir="Open Long" if side is Side.BUY else "Open Short",
        closed_pnl=Decimal(0),
        hash="0x" + "0" * 64,
        oid=oid,
        crossed=True,
        fee=Decimal("0.01"),
        tid=next(_tids) if tid is None else tid,
        fee_token="USDC",
        cloid=None,
    )


def fills(*items: Fill, snapshot: bool = False) -> UserFills:
    return UserFills(user=USER, is_snapshot=snapshot, fills=items, malformed=0)


def update(pending: PendingOrder, oid: int, status: str) -> OrderUpdates:
    one = OrderUpdate(
        coin=pending.coin,
        side=pending.side,
        limit_px=pending.limit_px,
        sz=pending.size,
        orig_sz=pending.size,
        oid=oid,
        cloid=pending.cloid,
        timestamp_ms=0,
        status=status,
        status_timestamp_ms=0,
    )
    return OrderUpdates(updates=(one,), malformed=0)
