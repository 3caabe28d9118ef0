"""One market's order book: price-time priority, matching, and the l2 view.

Prices are kept in ascending lists per side (best bid last, best ask first) with a FIFO queue per price, so
adding, cancelling and matching touch only the levels involved. Self-trade prevention is expire-maker: a
resting order of the taker's own user met while matching is removed and reported, never traded against.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from decimal import Decimal

import attrs

L2_DEPTH = 20


@attrs.define(slots=True, eq=False)
class RestingOrder:
    oid: int
    user: str
    coin: str
    is_buy: bool
    px: Decimal
    sz: Decimal  # what is left to fill
    orig_sz: Decimal
    timestamp: int
    tif: str
    reduce_only: bool = False
    cloid: str | None = None


@attrs.frozen(slots=True)
class Match:
    """`sz` of the resting order `maker` traded at its price `px`."""

    maker: RestingOrder
    px: Decimal
    sz: Decimal


@attrs.frozen(slots=True)
class TakeResult:
    matches: list[Match]
    self_trade_canceled: list[RestingOrder]
    filled: Decimal


class _Side:
    """The orders on one side, by price. `prices` is ascending whatever the side."""

    __slots__ = ("is_buy", "prices", "queues")

    def __init__(self, *, is_buy: bool) -> None:
        self.is_buy = is_buy
        self.prices: list[Decimal] = []
        self.queues: dict[Decimal, deque[RestingOrder]] = {}

    def best(self) -> Decimal | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.is_buy else self.prices[0]

    def add(self, order: RestingOrder) -> None:
        queue = self.queues.get(order.px)
        if queue is None:
            queue = self.queues[order.px] = deque()
            bisect.insort(self.prices, order.px)
        queue.append(order)

    def remove(self, order: RestingOrder) -> None:
        queue = self.queues[order.px]
        queue.remove(order)
        if not queue:
            self._drop_level(order.px)

    def _drop_level(self, px: Decimal) -> None:
        del self.queues[px]
        del self.prices[bisect.bisect_left(self.prices, px)]

    def prices_best_first(self) -> Iterator[Decimal]:
        return reversed(self.prices) if self.is_buy else iter(self.prices)

    def level(self, px: Decimal) -> tuple[Decimal, Decimal, int]:
        queue = self.queues[px]
        return px, sum((o.sz for o in queue), Decimal(0)), len(queue)


def _crosses(taker_is_buy: bool, limit_px: Decimal, resting_px: Decimal) -> bool:
    return resting_px <= limit_px if taker_is_buy else resting_px >= limit_px


class Book:
    def __init__(self, coin: str) -> None:
        self.coin = coin
        self._bids = _Side(is_buy=True)
        self._asks = _Side(is_buy=False)
        self._by_oid: dict[int, RestingOrder] = {}

    def _side(self, is_buy: bool) -> _Side:
        return self._bids if is_buy else self._asks

    def best_bid(self) -> Decimal | None:
        return self._bids.best()

    def best_ask(self) -> Decimal | None:
        return self._asks.best()

    def orders(self) -> Iterator[RestingOrder]:
        return iter(self._by_oid.values())

    def __len__(self) -> int:
        return len(self._by_oid)

    def would_cross(self, is_buy: bool, limit_px: Decimal) -> bool:
        best = self._side(not is_buy).best()
        return best is not None and _crosses(is_buy, limit_px, best)

    def add(self, order: RestingOrder) -> None:
        """Rest `order`. The caller has made sure it does not cross the other side."""
        if order.oid in self._by_oid:
            raise ValueError(f"oid {order.oid} already rests in {self.coin}")
        self._side(order.is_buy).add(order)
        self._by_oid[order.oid] = order

    def remove(self, oid: int) -> RestingOrder | None:
        order = self._by_oid.pop(oid, None)
        if order is not None:
            self._side(order.is_buy).remove(order)
        return order

    def take(self, taker_user: str, is_buy: bool, limit_px: Decimal, sz: Decimal) -> TakeResult:
        """Match up to `sz` against the other side at prices no worse than `limit_px`."""
        side = self._side(not is_buy)
        matches: list[Match] = []
        self_trades: list[RestingOrder] = []
        remaining = sz
        while remaining > 0:
            best = side.best()
            if best is None or not _crosses(is_buy, limit_px, best):
                break
            remaining = self._take_level(
                side,
                px=best,
                taker_user=taker_user,
                remaining=remaining,
                matches=matches,
                self_trades=self_trades,
            )
        return TakeResult(matches, self_trades, sz - remaining)

    def _take_level(
        self,
        side: _Side,
        *,
        px: Decimal,
        taker_user: str,
        remaining: Decimal,
        matches: list[Match],
        self_trades: list[RestingOrder],
    ) -> Decimal:
        queue = side.queues[px]
        while queue and remaining > 0:
            maker = queue[0]
            if maker.user == taker_user:
                queue.popleft()
                del self._by_oid[maker.oid]
                self_trades.append(maker)
                continue
            traded = min(remaining, maker.sz)
            maker.sz -= traded
            remaining -= traded
            matches.append(Match(maker, px, traded))
            if maker.sz == 0:
                queue.popleft()
                del self._by_oid[maker.oid]
        if not queue:
            side._drop_level(px)
        return remaining

    def levels(self, is_buy: bool, depth: int = L2_DEPTH) -> list[tuple[Decimal, Decimal, int]]:
        """(px, total size, order count) per price, best first, at most `depth` levels."""
        side = self._side(is_buy)
        out: list[tuple[Decimal, Decimal, int]] = []
        for px in side.prices_best_first():
            if len(out) == depth:
                break
            out.append(side.level(px))
        return out

    def top(self, is_buy: bool) -> tuple[Decimal, Decimal, int] | None:
        levels = self.levels(is_buy, 1)
        return levels[0] if levels else None
