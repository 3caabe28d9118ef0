"""Position arithmetic and per-order fill progress."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.core.order import Side
from hip3.position.model import OrderFillProgress, Position, apply_fill

COIN = "xyz:TSLA"


def test_a_first_fill_opens_at_its_price_and_time() -> None:
    effect = apply_fill(None, COIN, Side.BUY, D("0.2"), D(430), time_ms=5)
    assert effect.position == Position(COIN, D("0.2"), D(430), 5)
    assert effect.realized_pnl == 0 and effect.closed_size == 0


def test_same_side_averages_the_entry_and_keeps_the_entry_time() -> None:
    long = Position(COIN, D("0.2"), D(430), 5)
    effect = apply_fill(long, COIN, Side.BUY, D("0.1"), D(433), time_ms=9)
    assert effect.position == Position(COIN, D("0.3"), D(431), 5)


def test_opposite_side_reduces_keeping_the_entry() -> None:
    long = Position(COIN, D("0.3"), D(431), 5)
    effect = apply_fill(long, COIN, Side.SELL, D("0.1"), D(441), time_ms=9)
    assert effect.position == Position(COIN, D("0.2"), D(431), 5)
    assert effect.realized_pnl == D("1.0") and effect.closed_size == D("0.1")


def test_closing_to_zero_leaves_no_position() -> None:
    short = Position(COIN, D("-0.5"), D(100), 5)
    effect = apply_fill(short, COIN, Side.BUY, D("0.5"), D(98), time_ms=9)
    assert effect.position is None
    assert effect.realized_pnl == D("1.0")  # a short that buys back 2 lower earns 0.5 · 2


def test_a_flip_opens_the_rest_at_the_fill_price_and_time() -> None:
    long = Position(COIN, D("0.2"), D(430), 5)
    effect = apply_fill(long, COIN, Side.SELL, D("0.5"), D(420), time_ms=9)
    assert effect.position == Position(COIN, D("-0.3"), D(420), 9)
    assert effect.realized_pnl == D("-2.0") and effect.closed_size == D("0.2")


def test_fill_sizes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        apply_fill(None, COIN, Side.BUY, D(0), D(1), time_ms=0)


def test_response_then_stream_counts_once() -> None:
    progress = OrderFillProgress()
    assert progress.excess_from_total(D("0.3"), D(430)) == (D("0.3"), D(430))
    assert progress.excess_from_stream(D("0.1"), D(429)) is None
    assert progress.excess_from_stream(D("0.2"), D("430.5")) is None


def test_stream_then_response_applies_only_the_remainder_at_the_implied_price() -> None:
    progress = OrderFillProgress()
    assert progress.excess_from_stream(D("0.1"), D(429)) == (D("0.1"), D(429))
    excess = progress.excess_from_total(D("0.3"), D(430))
    assert excess == (D("0.2"), D("430.5"))  # 0.3 · 430 = 0.1 · 429 + 0.2 · 430.5


def test_a_later_partial_fill_of_a_resting_order_still_counts() -> None:
    progress = OrderFillProgress()
    progress.excess_from_total(D("0.2"), D(430))
    assert progress.excess_from_stream(D("0.2"), D(430)) is None
    assert progress.excess_from_stream(D("0.1"), D(431)) == (D("0.1"), D(431))


sizes = st.decimals(min_value=D("0.001"), max_value=D(5), places=3)
prices = st.decimals(min_value=D(1), max_value=D(1000), places=2)


@given(fills=st.lists(st.tuples(sizes, prices), min_size=1, max_size=8), response_at=st.integers(0, 8))
def test_any_interleaving_applies_exactly_the_filled_total(
    fills: list[tuple[D, D]], response_at: int
) -> None:
    """userFills in order, with the post response's total arriving somewhere among them."""
    progress = OrderFillProgress()
    total = sum((size for size, _ in fills), D(0))
    total_notional = sum((size * px for size, px in fills), D(0))
    response_at = min(response_at, len(fills))
    applied_size, applied_notional = D(0), D(0)
    for index, (size, px) in enumerate(fills):
        if index == response_at:
            excess = progress.excess_from_total(total, total_notional / total)
            if excess:
                applied_size += excess[0]
                applied_notional += excess[0] * excess[1]
        excess = progress.excess_from_stream(size, px)
        if excess:
            applied_size += excess[0]
            applied_notional += excess[0] * excess[1]
    assert applied_size == total
    assert abs(applied_notional - total_notional) < D("1e-20")
