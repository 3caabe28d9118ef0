"""Value types: sides, cloids, market keys and asset ids, market specs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.core.market import MarginMode, MarketKey, MarketSpec
from hip3.core.order import Cloid, CloidError, Side


def test_side_wire_letters_and_signs() -> None:
    assert Side.from_wire("B") is Side.BUY and Side.from_wire("A") is Side.SELL
    assert Side.BUY.sign == 1 and Side.SELL.sign == -1
    assert Side.BUY.opposite is Side.SELL and Side.from_is_buy(False) is Side.SELL
    assert (Side.BUY.label, Side.SELL.label) == ("buy", "sell")
    with pytest.raises(ValueError, match="side must be 'B' or 'A', got 'X'"):
        Side.from_wire("X")


def test_first_dex_asset_id_is_the_meta_index() -> None:
    assert MarketKey("", 0, 4).asset_id == 4


def test_builder_dex_asset_id() -> None:
    # predecessor W-011: SILVER at meta(xyz) index 26, xyz at perpDexs index 1.
    assert MarketKey("xyz", 1, 26).asset_id == 110026
    assert MarketKey("xyz", 1, 0).asset_id == 110000
    assert MarketKey("abc", 2, 7).asset_id == 120007


@given(dex_index=st.integers(1, 50), meta_index=st.integers(0, 9999))
def test_builder_asset_ids_are_distinct_per_market(dex_index: int, meta_index: int) -> None:
    asset = MarketKey("d", dex_index, meta_index).asset_id
    assert divmod(asset - 100_000, 10_000) == (dex_index, meta_index)


@pytest.mark.parametrize(
    ("dex", "dex_index", "meta_index"),
    [("xyz", 0, 1), ("", 1, 1), ("xyz", -1, 0), ("xyz", 1, -1), ("xyz", 1, 10_000)],
)
def test_inconsistent_market_keys_are_refused(dex: str, dex_index: int, meta_index: int) -> None:
    with pytest.raises(ValueError):
        MarketKey(dex, dex_index, meta_index)


def test_market_spec_rules() -> None:
    spec = MarketSpec(
        name="xyz:XYZ100",
        key=MarketKey("xyz", 1, 0),
        sz_decimals=4,
        max_leverage=20,
        only_isolated=True,
        margin_mode=MarginMode.STRICT_ISOLATED,
    )
    assert spec.asset_id == 110000
    assert spec.max_price_decimals == 2
    assert spec.isolated_only
    with pytest.raises(ValueError, match="szDecimals"):
        MarketSpec(name="x", key=MarketKey("", 0, 0), sz_decimals=7, max_leverage=3)
    with pytest.raises(ValueError, match="maxLeverage"):
        MarketSpec(name="x", key=MarketKey("", 0, 0), sz_decimals=1, max_leverage=0)


def test_cloid_new_is_random_lower_hex() -> None:
    first, second = Cloid.new(), Cloid.new()
    assert first != second
    assert len(first.value) == 34 and first.value.startswith("0x") and first.value == first.value.lower()


def test_cloid_from_int_matches_the_sdk() -> None:
    assert Cloid.from_int(1).value == "0x00000000000000000000000000000001"
    assert Cloid.from_int(2**127).value == "0x80000000000000000000000000000000"
    with pytest.raises(CloidError):
        Cloid.from_int(2**128)


def test_cloid_parse_normalises_case() -> None:
    assert Cloid.parse("0x6F1C2D3E4F5A6B7C8D9E0F1A2B3C4D5E").value == "0x6f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0x",
        "6f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
        "0x6f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5",
        "0x" + "g" * 32,
        "0x" + "0" * 33,
    ],
)
def test_bad_cloids_give_a_clear_error(text: str) -> None:
    with pytest.raises(CloidError, match="cloid must be '0x' followed by 32 hex digits"):
        Cloid.parse(text)
    with pytest.raises(CloidError):
        Cloid(text)


def test_cloid_constructor_refuses_upper_case() -> None:
    with pytest.raises(CloidError, match="lower-case"):
        Cloid("0x" + "A" * 32)
