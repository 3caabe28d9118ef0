"""The exchange's tick and lot rules for perps, and the wire form of numbers.

Prices: at most 5 significant figures and at most `6 - szDecimals` decimals; an integer price is always valid.
Sizes: at most `szDecimals` decimals. A limit price is rounded in the order's aggressive direction (up for a
buy, down for a sell) so that a slippage bound is honoured, never silently tightened (predecessor §6 item 18).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from hip3.core.market import MarketSpec
from hip3.core.order import Side

PRICE_SIG_FIGS = 5
WIRE_MAX_DECIMALS = 8  # the exchange keeps numbers as fixed point with 8 decimals


class RoundingError(ValueError):
    """A price or size that cannot be made valid for the exchange."""


class ZeroSizeError(RoundingError):
    """A size that floors to zero at the market's lot (predecessor J-003)."""


def _require_positive(value: Decimal, what: str) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{what} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite() or value <= 0:
        raise RoundingError(f"{what} must be a positive finite number, got {value}")


def _allowed_price_decimals(price: Decimal, max_decimals: int) -> int:
    # adjusted() is the exponent of the leading digit: 5 significant figures leave 4 - adjusted() decimals.
    return max(0, min(max_decimals, PRICE_SIG_FIGS - 1 - price.adjusted()))


def is_valid_price(price: Decimal, spec: MarketSpec) -> bool:
    _require_positive(price, "price")
    if price == price.to_integral_value():
        return True
    decimals = -price.normalize().as_tuple().exponent  # type: ignore[operator]
    return decimals <= _allowed_price_decimals(price, spec.max_price_decimals)


def round_price(price: Decimal, spec: MarketSpec, side: Side) -> Decimal:
    """The nearest valid price at or beyond `price` in the aggressive direction of `side`."""
    _require_positive(price, "price")
    if price == price.to_integral_value():
        return price
    quantum = Decimal(1).scaleb(-_allowed_price_decimals(price, spec.max_price_decimals))
    rounded = price.quantize(quantum, rounding=ROUND_CEILING if side.is_buy else ROUND_FLOOR)
    if rounded <= 0:
        raise RoundingError(f"{spec.name}: price {price} rounds to zero at {quantum}")
    return rounded


def is_valid_size(size: Decimal, spec: MarketSpec) -> bool:
    _require_positive(size, "size")
    return size == size.quantize(Decimal(1).scaleb(-spec.sz_decimals), rounding=ROUND_FLOOR)


def round_size(size: Decimal, spec: MarketSpec) -> Decimal:
    """Floor `size` to the market's lot; a result of zero raises ZeroSizeError."""
    _require_positive(size, "size")
    lot = Decimal(1).scaleb(-spec.sz_decimals)
    floored = size.quantize(lot, rounding=ROUND_FLOOR)
    if floored == 0:
        raise ZeroSizeError(f"{spec.name}: size {size} floors to zero at lot {lot}")
    return floored


def to_wire(value: Decimal) -> str:
    """The exchange's number string: plain digits, no exponent, no trailing zeros, never "-0"."""
    if not isinstance(value, Decimal):
        raise TypeError(f"wire numbers must be Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"wire numbers must be finite, got {value}")
    if value == 0:
        return "0"
    normal = value.normalize()
    if -normal.as_tuple().exponent > WIRE_MAX_DECIMALS:  # type: ignore[operator]
        raise RoundingError(f"{value} has more than {WIRE_MAX_DECIMALS} decimals; round it before the wire")
    return format(normal, "f")
