"""Positions, fill accounting and the HIP-3 fee model.

A position keeps its signed size, its entry price (volume-weighted on increase, kept on reduce, reset to the
fill price on a flip) and the realised PnL of every reducing fill. Money is kept to 6 decimals (USDC's).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import attrs

from hip3.core.market import BPS_DECIMAL
from hip3.core.rounding import to_wire

USDC_QUANTUM = Decimal("0.000001")
PRICE_QUANTUM = Decimal("0.00000001")  # computed prices (average, entry) on the wire: 8 decimals at most
GROWTH_MODE_FACTOR = Decimal("0.1")
ZERO = Decimal(0)


def usdc(value: Decimal) -> Decimal:
    return value.quantize(USDC_QUANTUM, rounding=ROUND_HALF_EVEN)


def amount_wire(value: Decimal) -> str:
    """Money and amounts as the real API writes them: a float's text, so a whole number keeps ".0"."""
    text = to_wire(value)
    return text if "." in text else f"{text}.0"


def wire_price(value: Decimal) -> Decimal:
    return value.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)


@attrs.frozen(slots=True)
class FeeSplit:
    """Fee rates as fractions of notional."""

    protocol: Decimal
    deployer: Decimal

    @property
    def total(self) -> Decimal:
        return self.protocol + self.deployer


def fee_split(
    base_bps: Decimal, *, builder_dex: bool, deployer_scale: Decimal, growth_mode: bool
) -> FeeSplit:
    """The protocol and deployer rates for a user base rate x (§9 fee table).

    First dex: x only. Builder dex with scale s: s ≤ 1 → protocol x, deployer s·x; s > 1 → both x·s.
    Growth mode cuts both parts by 90 %: the reference's growth-mode table (scale 0.5 → (0.1, 0.05),
    3.01 → (0.301, 0.301) in units of x) shows the deployer part cut as well as the protocol part.
    """
    x = base_bps / BPS_DECIMAL
    if not builder_dex:
        return FeeSplit(x, ZERO)
    protocol = x if deployer_scale <= 1 else x * deployer_scale
    deployer = x * deployer_scale
    if growth_mode:
        return FeeSplit(protocol * GROWTH_MODE_FACTOR, deployer * GROWTH_MODE_FACTOR)
    return FeeSplit(protocol, deployer)


@attrs.define(slots=True)
class Position:
    szi: Decimal = ZERO
    entry_px: Decimal = ZERO  # meaningless while szi == 0
    realized_pnl: Decimal = ZERO


@attrs.frozen(slots=True)
class FillEffect:
    start_position: Decimal
    direction: str  # userFills `dir`
    closed_pnl: Decimal


def _direction(start: Decimal, end: Decimal, is_buy: bool) -> str:
    if start == 0 or ((start > 0) == (end > 0) and abs(end) > abs(start)):
        return "Open Long" if is_buy else "Open Short"
    if end != 0 and (start > 0) != (end > 0):
        return "Long > Short" if start > 0 else "Short > Long"
    return "Close Short" if is_buy else "Close Long"


def apply_fill(position: Position, *, is_buy: bool, sz: Decimal, px: Decimal) -> FillEffect:
    """Book a fill of `sz` at `px` into `position`; returns what the userFills entry reports."""
    start = position.szi
    signed = sz if is_buy else -sz
    end = start + signed
    closed = ZERO
    if start != 0 and (start > 0) != is_buy:
        closed_sz = min(sz, abs(start))
        closed = usdc(closed_sz * (px - position.entry_px) * (1 if start > 0 else -1))
    if end == 0:
        position.entry_px = ZERO
    elif start == 0 or (start > 0) != (end > 0):
        position.entry_px = px
    elif abs(end) > abs(start):
        position.entry_px = (abs(start) * position.entry_px + sz * px) / abs(end)
    position.szi = end
    position.realized_pnl += closed
    return FillEffect(start, _direction(start, end, is_buy), closed)


def increase_of(position_szi: Decimal, *, is_buy: bool, sz: Decimal) -> Decimal:
    """How much a fill of `sz` would grow the absolute position (0 for a pure reduce)."""
    end = position_szi + (sz if is_buy else -sz)
    return max(ZERO, abs(end) - abs(position_szi))


@attrs.define(slots=True)
class Account:
    address: str
    balance: Decimal  # USDC, shared across dexes
    positions: dict[str, Position] = attrs.field(factory=dict)
    leverage: dict[str, int] = attrs.field(factory=dict)

    def position(self, coin: str) -> Position:
        pos = self.positions.get(coin)
        if pos is None:
            pos = self.positions[coin] = Position()
        return pos

    def size(self, coin: str) -> Decimal:
        pos = self.positions.get(coin)
        return ZERO if pos is None else pos.szi
