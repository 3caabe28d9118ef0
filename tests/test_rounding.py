"""Tick and lot rules (protocol reference §3) and the wire form of numbers."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.core.market import MarketKey, MarketSpec
from hip3.core.order import Side
from hip3.core.rounding import (
    RoundingError,
    ZeroSizeError,
    is_valid_price,
    is_valid_size,
    round_price,
    round_size,
    to_wire,
)
from tests.conftest import VECTORS_FILE


def spec(sz_decimals: int, name: str = "xyz:TEST") -> MarketSpec:
    return MarketSpec(name=name, key=MarketKey("xyz", 1, 0), sz_decimals=sz_decimals, max_leverage=10)


def reference_is_valid_price(price: D, sz_decimals: int) -> bool:
    """An independent reading of the rule, by counting characters of the plain string."""
    text = format(price.normalize(), "f")
    if "." not in text:
        return True
    whole, frac = text.split(".")
    significant = (whole.lstrip("0") + frac).lstrip("0")
    return len(frac) <= 6 - sz_decimals and len(significant) <= 5


# -- documented examples ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "sz_decimals", "valid"),
    [
        ("1234.5", 0, True),
        ("1234.56", 0, False),
        ("0.001234", 0, True),
        ("0.0012345", 0, False),
        ("0.01234", 1, True),
        ("0.012345", 1, False),
        ("123456", 0, True),  # integer prices are always valid, whatever their significant figures
        ("12345.6", 0, False),
        ("104.63", 2, True),
        ("104.635", 2, False),
    ],
)
def test_documented_price_examples(price: str, sz_decimals: int, valid: bool) -> None:
    assert is_valid_price(D(price), spec(sz_decimals)) is valid


def test_predecessor_w004_buy_rounds_up_and_sell_rounds_down() -> None:
    # The predecessor truncated 12345.6789 to "12345" for a buy; a buy limit must never end below its intent.
    market = spec(4)
    assert to_wire(round_price(D("12345.6789"), market, Side.BUY)) == "12346"
    assert to_wire(round_price(D("12345.6789"), market, Side.SELL)) == "12345"


def test_predecessor_w004_size_floors_to_lot() -> None:
    assert to_wire(round_size(D("1.2345678"), spec(3))) == "1.234"


def test_predecessor_j003_size_that_floors_to_zero_raises() -> None:
    with pytest.raises(ZeroSizeError, match=r"floors to zero at lot 0\.0001"):
        round_size(D("0.00005"), spec(4, "xyz:PLATINUM"))


def test_gold_size_from_notional_uses_meta_sz_decimals() -> None:
    # c2da77b: GOLD szDecimals 4, a $12 order at $4999 is 0.0024, not 0.
    assert round_size(D(12) / D(4999), spec(4, "xyz:GOLD")) == D("0.0024")


def test_integer_price_beyond_five_figures_is_kept() -> None:
    market = spec(0)
    assert round_price(D("123456"), market, Side.SELL) == D("123456")
    assert round_price(D("123456.7"), market, Side.BUY) == D("123457")
    assert round_price(D("123456.7"), market, Side.SELL) == D("123456")


def test_buy_that_crosses_a_power_of_ten_stays_valid() -> None:
    assert round_price(D("9.99995"), spec(0), Side.BUY) == D("10")
    assert round_price(D("99999.5"), spec(0), Side.BUY) == D("100000")


def test_tiny_sell_price_that_rounds_to_zero_raises() -> None:
    with pytest.raises(RoundingError, match="rounds to zero"):
        round_price(D("0.0000001"), spec(0), Side.SELL)


@pytest.mark.parametrize("bad", [D(0), D(-1), D("NaN"), D("Infinity")])
def test_non_positive_or_non_finite_inputs_raise(bad: D) -> None:
    with pytest.raises(RoundingError):
        round_price(bad, spec(2), Side.BUY)
    with pytest.raises(RoundingError):
        round_size(bad, spec(2))


def test_float_inputs_are_refused() -> None:
    with pytest.raises(TypeError):
        round_price(1.5, spec(2), Side.BUY)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_wire(1.5)  # type: ignore[arg-type]


def test_size_validity() -> None:
    assert is_valid_size(D("1.001"), spec(3))
    assert not is_valid_size(D("1.0001"), spec(3))


# -- properties ---------------------------------------------------------------------------------------

prices = st.decimals(min_value=D("0.000001"), max_value=D("5000000"), places=9, allow_nan=False).filter(
    lambda d: d > 0
)
sz_decimals = st.integers(min_value=0, max_value=6)


def _cheapest_valid_at_or_above(price: D, sz_dec: int) -> D:
    candidates = [price.quantize(D(1).scaleb(-d), rounding="ROUND_CEILING") for d in range(0, 7 - sz_dec)]
    return min(c for c in candidates if c > 0 and reference_is_valid_price(c, sz_dec))


def _dearest_valid_at_or_below(price: D, sz_dec: int) -> D:
    candidates = [price.quantize(D(1).scaleb(-d), rounding="ROUND_FLOOR") for d in range(0, 7 - sz_dec)]
    return max(c for c in candidates if c > 0 and reference_is_valid_price(c, sz_dec))


@given(price=prices, sz_dec=sz_decimals)
def test_buy_rounding_is_the_nearest_valid_price_not_below(price: D, sz_dec: int) -> None:
    rounded = round_price(price, spec(sz_dec), Side.BUY)
    assert rounded >= price
    assert reference_is_valid_price(rounded, sz_dec)
    assert is_valid_price(rounded, spec(sz_dec))
    assert rounded == _cheapest_valid_at_or_above(price, sz_dec)


@given(price=prices, sz_dec=sz_decimals)
def test_sell_rounding_is_the_nearest_valid_price_not_above(price: D, sz_dec: int) -> None:
    market = spec(sz_dec)
    try:
        rounded = round_price(price, market, Side.SELL)
    except RoundingError:
        assert price.quantize(D(1).scaleb(-(6 - sz_dec)), rounding="ROUND_FLOOR") == 0
        return
    assert rounded <= price
    assert reference_is_valid_price(rounded, sz_dec)
    assert rounded == _dearest_valid_at_or_below(price, sz_dec)


@given(price=prices, sz_dec=sz_decimals)
def test_is_valid_price_agrees_with_the_reference(price: D, sz_dec: int) -> None:
    assert is_valid_price(price, spec(sz_dec)) is reference_is_valid_price(price, sz_dec)


@given(size=st.decimals(min_value=D("0.0000001"), max_value=D("1000000"), places=9), sz_dec=sz_decimals)
def test_size_is_floored_to_the_lot(size: D, sz_dec: int) -> None:
    lot = D(1).scaleb(-sz_dec)
    try:
        rounded = round_size(size, spec(sz_dec))
    except ZeroSizeError:
        assert size < lot
        return
    assert rounded <= size < rounded + lot
    assert is_valid_size(rounded, spec(sz_dec))


# -- wire strings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        ("100", "100"),
        ("1E+2", "100"),
        ("1.500", "1.5"),
        ("0.00076000", "0.00076"),
        ("0.00000001", "0.00000001"),
        ("87654321.12345678", "87654321.12345678"),
        ("987654321.00000000", "987654321"),
        ("0", "0"),
        ("-0", "0"),
        ("0.000", "0"),
        ("1E+20", "100000000000000000000"),
    ],
)
def test_wire_strings(value: str, wire: str) -> None:
    assert to_wire(D(value)) == wire


def test_wire_strings_match_the_sdk_vectors() -> None:
    vectors = json.loads(VECTORS_FILE.read_text())
    for case in vectors["float_to_wire"]:
        assert to_wire(D(str(case["in"]))) == case["out"]
    for value in vectors["float_to_wire_raises"]:
        with pytest.raises(RoundingError, match="more than 8 decimals"):
            to_wire(D(str(value)))


@given(st.decimals(min_value=D("-1e12"), max_value=D("1e12"), places=8, allow_nan=False))
def test_wire_strings_are_plain_and_exact(value: D) -> None:
    text = to_wire(value)
    assert "E" not in text and "e" not in text
    assert D(text) == value
    assert text != "-0"
    if "." in text:
        assert not text.endswith("0") and not text.endswith(".")
