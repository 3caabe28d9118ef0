"""The size of an entry, decided before the gates: a valid lot size between the exchange minimum and our cap.

Rules, in order (issue 5, "Sizing before the gates"):

1. Floor the suggested size to the market's lot; a size that floors to zero is dropped (predecessor J-003).
2. If the order is worth more than `remaining_cap · cap_buffer` at the mark, shrink it to that and floor
   again. The buffer lets a size computed at mid pass the notional gate valued at a mark up to ~1 % higher
   ("U boundary rejection"). A shrink never goes below the exchange minimum: such an order is dropped.
3. If the order is worth less than the minimum ($10) at the mark, raise it to the minimum target ($11, the
   size ceiled to the lot so it really clears $10), but only if the target fits under the buffered cap and
   within the visible book size; otherwise drop it ("U minimum notional"; the predecessor's boost could
   exceed the book, and its scale-down let $5 orders through without re-rounding: §6 item 19).

The size returned is valid for the lot and is the size that is sent. Everything is Decimal; nothing here reads
state, so the caller passes the remaining cap (the smaller of what the per-market and total limits leave).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import attrs

from hip3.core.market import MarketSpec

MIN_NOTIONAL = Decimal(10)  # the exchange's minimum order value for perps (protocol reference §3)
MIN_NOTIONAL_TARGET = Decimal(11)
CAP_BUFFER = Decimal("0.99")


@attrs.frozen
class SizedOrder:
    size: Decimal  # a multiple of the lot: the size to send
    notional_at_mark: Decimal
    raised_to_minimum: bool
    shrunk_to_cap: bool


@attrs.frozen
class SizeDropped:
    reason: str


def size_entry(
    spec: MarketSpec,
    *,
    suggested_size: Decimal,
    mark: Decimal,
    remaining_cap: Decimal,
    visible_size: Decimal,
    min_notional: Decimal = MIN_NOTIONAL,
    min_notional_target: Decimal = MIN_NOTIONAL_TARGET,
    cap_buffer: Decimal = CAP_BUFFER,
) -> SizedOrder | SizeDropped:
    """The size to send for an entry suggested at `suggested_size`, or why there is none."""
    _check_parameters(min_notional, min_notional_target, cap_buffer)
    if not mark.is_finite() or mark <= 0:
        return SizeDropped(f"no usable mark ({mark})")
    if not suggested_size.is_finite() or suggested_size <= 0:
        return SizeDropped(f"suggested size {suggested_size} is not positive")
    lot = lot_of(spec)
    size = floor_to_lot(suggested_size, lot)
    if size == 0:
        return SizeDropped(f"size {suggested_size} floors to zero at lot {lot}")
    usable_cap = remaining_cap * cap_buffer
    if size * mark > usable_cap:
        return _shrunk_to_cap(size, mark, lot, usable_cap, min_notional)
    if size * mark < min_notional:
        return _raised_to_minimum(
            size,
            mark=mark,
            lot=lot,
            usable_cap=usable_cap,
            visible_size=visible_size,
            min_notional=min_notional,
            min_notional_target=min_notional_target,
        )
    return SizedOrder(size, size * mark, raised_to_minimum=False, shrunk_to_cap=False)


def lot_of(spec: MarketSpec) -> Decimal:
    return Decimal(1).scaleb(-spec.sz_decimals)


def floor_to_lot(size: Decimal, lot: Decimal) -> Decimal:
    return size.quantize(lot, rounding=ROUND_FLOOR)


def ceil_to_lot(size: Decimal, lot: Decimal) -> Decimal:
    return size.quantize(lot, rounding=ROUND_CEILING)


def _shrunk_to_cap(
    size: Decimal, mark: Decimal, lot: Decimal, usable_cap: Decimal, min_notional: Decimal
) -> SizedOrder | SizeDropped:
    if usable_cap <= 0:
        return SizeDropped(f"no room under the cap ({usable_cap} after the buffer)")
    shrunk = floor_to_lot(usable_cap / mark, lot)
    if shrunk * mark < min_notional:
        return SizeDropped(
            f"size {size} shrunk to the cap {usable_cap} is {shrunk}, worth {shrunk * mark} at mark {mark}:"
            f" below the minimum ${min_notional}"
        )
    return SizedOrder(shrunk, shrunk * mark, raised_to_minimum=False, shrunk_to_cap=True)


def _raised_to_minimum(
    size: Decimal,
    *,
    mark: Decimal,
    lot: Decimal,
    usable_cap: Decimal,
    visible_size: Decimal,
    min_notional: Decimal,
    min_notional_target: Decimal,
) -> SizedOrder | SizeDropped:
    raised = ceil_to_lot(min_notional_target / mark, lot)
    below = f"size {size} is worth {size * mark} at mark {mark}, below ${min_notional}"
    if raised * mark > usable_cap:
        return SizeDropped(
            f"{below}; the minimum {raised} (${min_notional_target}) exceeds the cap {usable_cap}"
        )
    if raised > visible_size:
        return SizeDropped(
            f"{below}; the minimum {raised} (${min_notional_target}) exceeds the visible book {visible_size}"
        )
    return SizedOrder(raised, raised * mark, raised_to_minimum=True, shrunk_to_cap=False)


def _check_parameters(min_notional: Decimal, min_notional_target: Decimal, cap_buffer: Decimal) -> None:
    if not 0 < min_notional <= min_notional_target:
        raise ValueError(
            f"need 0 < min_notional ≤ min_notional_target, got {min_notional}, {min_notional_target}"
        )
    if not 0 < cap_buffer <= 1:
        raise ValueError(f"cap_buffer must be in (0, 1], got {cap_buffer}")
