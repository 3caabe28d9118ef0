"""Positions, pending orders and fills as values, and the arithmetic between them. No I/O, no tasks.

A fill of the same side as a position averages its entry; the opposite side reduces it (entry kept),
closes it at zero, or flips it (the remainder opens at the fill's price and time). The realised PnL of the
closed part is returned with every fill so the risk monitor can be fed from our own accounting.
"""

from __future__ import annotations

import enum
from decimal import Decimal

import attrs

from hip3.core.order import Cloid, Side, Tif

ZERO = Decimal(0)


@attrs.frozen(slots=True)
class Position:
    coin: str
    size: Decimal  # signed: > 0 long, < 0 short, never 0 (a flat market has no Position)
    entry_px: Decimal
    entry_time_ms: int  # exchange time of the fill that opened it; survives resyncs and restarts

    @property
    def side(self) -> Side:
        return Side.BUY if self.size > 0 else Side.SELL

    def notional(self, mark: Decimal) -> Decimal:
        return abs(self.size) * mark


@attrs.frozen(slots=True)
class FillEffect:
    position: Position | None  # after the fill
    realized_pnl: Decimal  # of the part the fill closed, before fees
    closed_size: Decimal  # how much of an existing position the fill closed (≥ 0)


def apply_fill(
    position: Position | None, coin: str, side: Side, size: Decimal, px: Decimal, *, time_ms: int
) -> FillEffect:
    """The position after a fill of `size` (> 0) on `side` at `px`."""
    if size <= 0:
        raise ValueError(f"fill size must be positive, got {size}")
    signed = size * side.sign
    if position is None or position.side is side:
        return FillEffect(_increase(position, coin, signed, px, time_ms), ZERO, ZERO)
    closed = min(size, abs(position.size))
    pnl = closed * (px - position.entry_px) * position.side.sign
    remaining = position.size + signed
    if remaining == 0:
        return FillEffect(None, pnl, closed)
    if (remaining > 0) == (position.size > 0):
        return FillEffect(attrs.evolve(position, size=remaining), pnl, closed)
    return FillEffect(Position(coin, remaining, px, time_ms), pnl, closed)  # flipped


def _increase(position: Position | None, coin: str, signed: Decimal, px: Decimal, time_ms: int) -> Position:
    if position is None:
        return Position(coin, signed, px, time_ms)
    total = position.size + signed
    entry = (position.entry_px * position.size + px * signed) / total
    return attrs.evolve(position, size=total, entry_px=entry)


class OrderPhase(enum.Enum):
    QUEUED = "queued"  # registered, not yet sent
    SENT = "sent"  # in a post whose answer has not come
    RESTING = "resting"  # the exchange gave it an oid and it is open
    UNKNOWN = "unknown"  # sent, no answer: being reconciled by cloid


@attrs.define(slots=True)
class PendingOrder:
    """An order of ours from registration to a terminal state; only the tracker changes it once registered."""

    cloid: Cloid
    coin: str
    asset: int
    side: Side
    size: Decimal
    limit_px: Decimal
    tif: Tif
    reduce_only: bool
    registered_at: float  # trio.current_time()
    phase: OrderPhase = OrderPhase.QUEUED
    oid: int | None = None

    @property
    def notional(self) -> Decimal:
        """What the order can add to exposure, valued at its limit price."""
        return self.size * self.limit_px


@attrs.define(slots=True)
class OrderFillProgress:
    """How much of one order has been applied to positions, whichever source told us first.

    The post response gives the order's total filled size and average price; userFills give each fill.
    The position moves by the excess of the largest total any source has reported over what was applied.
    """

    applied_size: Decimal = ZERO
    applied_notional: Decimal = ZERO
    streamed_size: Decimal = ZERO  # sum of the userFills seen for this order
    streamed_notional: Decimal = ZERO

    def excess_from_total(self, total_size: Decimal, avg_px: Decimal) -> tuple[Decimal, Decimal] | None:
        """(size, px) still to apply when a source reports `total_size` filled at `avg_px` in all."""
        return self._take(total_size, total_size * avg_px)

    def excess_from_stream(self, size: Decimal, px: Decimal) -> tuple[Decimal, Decimal] | None:
        self.streamed_size += size
        self.streamed_notional += size * px
        return self._take(self.streamed_size, self.streamed_notional)

    def _take(self, total_size: Decimal, total_notional: Decimal) -> tuple[Decimal, Decimal] | None:
        excess = total_size - self.applied_size
        if excess <= 0:
            return None
        px = (total_notional - self.applied_notional) / excess
        self.applied_size, self.applied_notional = total_size, total_notional
        return excess, px
