"""Entry sizing: floor to the lot, shrink to the buffered cap, raise to $10 only if cap and book allow."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.core.market import MarketKey, MarketSpec
from hip3.core.rounding import is_valid_size
from hip3.execution.sizing import SizedOrder, SizeDropped, size_entry

D = Decimal
PLENTY = D(1_000_000)


def spec(sz_decimals: int, name: str = "xyz:TEST") -> MarketSpec:
    return MarketSpec(name=name, key=MarketKey("xyz", 1, 0), sz_decimals=sz_decimals, max_leverage=10)


PLATINUM, GOLD, TSLA, PENNY = spec(4, "xyz:PLATINUM"), spec(4, "xyz:GOLD"), spec(3, "xyz:TSLA"), spec(0)


def sized(
    market: MarketSpec,
    suggested: Decimal,
    mark: Decimal,
    *,
    cap: Decimal = PLENTY,
    visible: Decimal = PLENTY,
) -> SizedOrder | SizeDropped:
    return size_entry(market, suggested_size=suggested, mark=mark, remaining_cap=cap, visible_size=visible)


# -- floor to the lot (J-003, BUG-003) -----------------------------------------------------------------------


def test_a_size_that_floors_to_zero_is_dropped_not_raised() -> None:
    assert sized(PLATINUM, D("0.00005"), D(1000)) == SizeDropped("size 0.00005 floors to zero at lot 0.0001")


def test_gold_at_4999_keeps_the_rounded_size_of_a_12_dollar_order() -> None:
    result = sized(GOLD, D(12) / D(4999), D(4999))

    assert result == SizedOrder(D("0.0024"), D("11.9976"), raised_to_minimum=False, shrunk_to_cap=False)


def test_the_floored_size_is_the_size_returned() -> None:
    result = sized(TSLA, D("0.123456"), D(430))

    assert result == SizedOrder(D("0.123"), D("52.890"), raised_to_minimum=False, shrunk_to_cap=False)


# -- raise to the minimum ("U minimum notional", §6 item 19) -------------------------------------------------


def test_a_4_dollar_order_is_raised_to_11_dollars_ceiled_to_the_lot() -> None:
    result = sized(TSLA, D("0.0093"), D(430))  # floors to 0.009: $3.87

    # 11 / 430 = 0.02558… → 0.026
    assert result == SizedOrder(D("0.026"), D("11.180"), raised_to_minimum=True, shrunk_to_cap=False)


def test_the_raise_ceils_so_a_coarse_lot_really_clears_ten_dollars() -> None:
    result = sized(PENNY, D(1), D(3))  # $3; 11 / 3 = 3.67: flooring would give 3 lots, $9

    assert result == SizedOrder(D(4), D(12), raised_to_minimum=True, shrunk_to_cap=False)


def test_the_raise_is_refused_when_the_visible_book_is_smaller() -> None:
    result = sized(TSLA, D("0.0093"), D(430), visible=D("0.025"))

    assert result == SizeDropped(
        "size 0.009 is worth 3.870 at mark 430, below $10;"
        " the minimum 0.026 ($11) exceeds the visible book 0.025"
    )


def test_the_raise_is_allowed_when_the_book_holds_exactly_the_minimum() -> None:
    result = sized(TSLA, D("0.0093"), D(430), visible=D("0.026"))

    assert isinstance(result, SizedOrder)
    assert result.size == D("0.026")


def test_the_raise_is_refused_when_the_buffered_cap_is_smaller() -> None:
    result = sized(TSLA, D("0.0093"), D(430), cap=D(11))  # 11 · 0.99 = 10.89 < 11.18

    assert result == SizeDropped(
        "size 0.009 is worth 3.870 at mark 430, below $10; the minimum 0.026 ($11) exceeds the cap 10.89"
    )


def test_the_raise_fits_a_cap_with_room_for_the_minimum_after_the_buffer() -> None:
    result = sized(TSLA, D("0.0093"), D(430), cap=D("11.30"))  # 11.30 · 0.99 = 11.187 ≥ 11.18

    assert result == SizedOrder(D("0.026"), D("11.180"), raised_to_minimum=True, shrunk_to_cap=False)


# -- shrink to the cap and re-round --------------------------------------------------------------------------


def test_an_order_over_the_cap_is_shrunk_to_the_buffered_cap_and_floored_to_the_lot() -> None:
    result = sized(TSLA, D("0.2"), D(430), cap=D(50))  # $86; 49.50 / 430 = 0.11511…

    assert result == SizedOrder(D("0.115"), D("49.450"), raised_to_minimum=False, shrunk_to_cap=True)


def test_a_shrink_below_ten_dollars_is_dropped() -> None:
    result = sized(TSLA, D("0.2"), D(430), cap=D(10))  # 9.90 / 430 = 0.0230… → $9.89

    assert result == SizeDropped(
        "size 0.200 shrunk to the cap 9.90 is 0.023, worth 9.890 at mark 430: below the minimum $10"
    )


def test_a_shrink_below_ten_dollars_is_dropped_even_when_the_cap_is_above_ten_but_the_lot_is_coarse() -> None:
    result = sized(PENNY, D(10), D(3), cap=D(12))  # 11.88 / 3 = 3.96 → 3 lots: $9

    assert result == SizeDropped(
        "size 10 shrunk to the cap 11.88 is 3, worth 9 at mark 3: below the minimum $10"
    )


@pytest.mark.parametrize(("cap", "shown"), [(D(0), "0.00"), (D(-5), "-4.95")])
def test_no_room_under_the_cap_drops(cap: Decimal, shown: str) -> None:
    assert sized(TSLA, D("0.1"), D(430), cap=cap) == SizeDropped(
        f"no room under the cap ({shown} after the buffer)"
    )


def test_an_order_exactly_at_the_buffered_cap_is_not_shrunk() -> None:
    result = sized(spec(4), D("0.495"), D(100), cap=D(50))  # $49.50 == 50 · 0.99

    assert result == SizedOrder(D("0.495"), D("49.500"), raised_to_minimum=False, shrunk_to_cap=False)


def test_one_lot_over_the_buffered_cap_is_shrunk_back_to_it() -> None:
    result = sized(spec(4), D("0.4951"), D(100), cap=D(50))

    assert result == SizedOrder(D("0.4950"), D("49.5000"), raised_to_minimum=False, shrunk_to_cap=True)


def test_the_buffer_leaves_room_for_a_mark_half_a_percent_above_the_price_sized_at() -> None:
    mid, mark = D(100), D("100.5")
    result = sized(spec(4), D("0.5"), mid, cap=D(50))  # the detector's max_notional / mid

    assert isinstance(result, SizedOrder)
    assert result.size == D("0.4950")
    assert result.size * mark == D("49.74750") < D(50)


# -- inputs that cannot be sized -----------------------------------------------------------------------------


@pytest.mark.parametrize("mark", [D(0), D(-1), D("NaN")])
def test_no_usable_mark_drops(mark: Decimal) -> None:
    assert sized(TSLA, D("0.1"), mark) == SizeDropped(f"no usable mark ({mark})")


@pytest.mark.parametrize("suggested", [D(0), D("-0.1")])
def test_a_suggestion_that_is_not_positive_drops(suggested: Decimal) -> None:
    assert sized(TSLA, suggested, D(430)) == SizeDropped(f"suggested size {suggested} is not positive")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"min_notional": D(0)}, "need 0 < min_notional ≤ min_notional_target"),
        ({"min_notional": D(12)}, "need 0 < min_notional ≤ min_notional_target"),
        ({"cap_buffer": D("1.01")}, "cap_buffer must be in"),
        ({"cap_buffer": D(0)}, "cap_buffer must be in"),
    ],
)
def test_inconsistent_parameters_are_refused(overrides: dict[str, Decimal], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        size_entry(
            TSLA, suggested_size=D(1), mark=D(1), remaining_cap=PLENTY, visible_size=PLENTY, **overrides
        )


# -- properties ----------------------------------------------------------------------------------------------


def _decimals(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=D(low), max_value=D(high), places=places, allow_nan=False, allow_infinity=False
    )


@given(
    sz_decimals=st.integers(min_value=0, max_value=6),
    suggested=_decimals("0.000001", "10000", 6),
    mark=_decimals("0.0001", "100000", 4),
    cap=_decimals("-100", "100000", 2),
    visible=_decimals("0", "100000", 6),
)
def test_any_sized_order_is_a_valid_lot_size_between_the_minimum_and_the_cap(
    sz_decimals: int, suggested: Decimal, mark: Decimal, cap: Decimal, visible: Decimal
) -> None:
    result = size_entry(
        spec(sz_decimals), suggested_size=suggested, mark=mark, remaining_cap=cap, visible_size=visible
    )

    if isinstance(result, SizeDropped):
        return
    assert is_valid_size(result.size, spec(sz_decimals))
    assert result.notional_at_mark == result.size * mark
    assert result.notional_at_mark >= D(10)
    assert result.notional_at_mark <= cap * D("0.99") <= cap
    assert not (result.raised_to_minimum and result.shrunk_to_cap)
    if result.raised_to_minimum:
        assert result.size <= visible
        assert result.notional_at_mark >= D(11)
    elif not result.shrunk_to_cap:
        assert result.size <= suggested < result.size + D(1).scaleb(-sz_decimals)
