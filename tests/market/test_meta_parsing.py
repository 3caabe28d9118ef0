"""Parsing of `meta` and `perpDexs` bodies (protocol reference §6.1, §6.3) into core types."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from hip3.core.market import MarginMode, MarketKey
from hip3.protocol.meta import MetaError, parse_meta, parse_perp_dexs

# protocol reference §6.1, verbatim (it merges an xyz entry and a delisted validator entry to show all flags)
META_EXAMPLE = """
{"universe":[
   {"name":"xyz:XYZ100","szDecimals":4,"maxLeverage":20,"marginTableId":20,"onlyIsolated":true,
    "marginMode":"strictIsolated","growthMode":"enabled","lastGrowthModeChangeTime":"2025-11-23T17:21:40.390706535"},
   {"name":"LOOM","szDecimals":1,"maxLeverage":3,"isDelisted":true,"marginMode":"strictIsolated","onlyIsolated":true}],
 "marginTables":[[50,{"description":"","marginTiers":[{"lowerBound":"0.0","maxLeverage":50}]}],
                 [51,{"description":"tiered 10x","marginTiers":[{"lowerBound":"0.0","maxLeverage":10},{"lowerBound":"3000000.0","maxLeverage":5}]}]],
 "collateralToken":0}
"""  # noqa: E501  (verbatim)

# protocol reference §6.3, verbatim
PERP_DEXS_EXAMPLE = """
[null,
 {"name":"xyz","fullName":"XYZ","deployer":"0x5e89b26d8d66da9888c835c9bfcc2aa51813e152","oracleUpdater":null,
  "feeRecipient":null,"assetToStreamingOiCap":[["xyz:TSLA","100000.0"]],"assetToFundingMultiplier":[["xyz:TSLA","1.0"]]}]
"""


def xyz_entry(name: str = "xyz:TSLA", **fields: Any) -> dict[str, Any]:
    return {"name": name, "szDecimals": 3, "maxLeverage": 10, **fields}


# ------------------------------------------------------------------ meta


def test_the_documented_meta_example_parses_with_every_flag() -> None:
    xyz100, loom = parse_meta(json.loads(META_EXAMPLE), dex="", dex_index=0)

    assert xyz100.name == "xyz:XYZ100"
    assert xyz100.key == MarketKey("", 0, 0)
    assert (xyz100.sz_decimals, xyz100.max_leverage, xyz100.margin_table_id) == (4, 20, 20)
    assert xyz100.only_isolated and xyz100.margin_mode is MarginMode.STRICT_ISOLATED
    assert xyz100.growth_mode and not xyz100.is_delisted
    assert xyz100.extra == {"lastGrowthModeChangeTime": "2025-11-23T17:21:40.390706535"}

    assert loom.name == "LOOM" and loom.asset_id == 1
    assert (loom.sz_decimals, loom.max_leverage, loom.margin_table_id) == (1, 3, None)
    assert loom.is_delisted and loom.isolated_only and not loom.growth_mode


def test_builder_dex_asset_ids_come_from_the_meta_index() -> None:
    body = {"universe": [xyz_entry("xyz:XYZ100"), xyz_entry("xyz:TSLA"), xyz_entry("xyz:NVDA")]}

    specs = parse_meta(body, dex="xyz", dex_index=1)

    assert [(s.name, s.asset_id) for s in specs] == [
        ("xyz:XYZ100", 110000),
        ("xyz:TSLA", 110001),
        ("xyz:NVDA", 110002),
    ]
    assert all(s.key.dex == "xyz" and s.key.dex_index == 1 for s in specs)


def test_absent_flags_take_their_defaults() -> None:
    (spec,) = parse_meta(
        {"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 40}]}, dex="", dex_index=0
    )

    assert not spec.only_isolated and spec.margin_mode is MarginMode.NORMAL
    assert not spec.is_delisted and not spec.growth_mode
    assert spec.margin_table_id is None and spec.extra == {}


@pytest.mark.parametrize(("value", "enabled"), [("enabled", True), ("disabled", False)])
def test_growth_mode_is_on_only_when_enabled(value: str, enabled: bool) -> None:
    (spec,) = parse_meta({"universe": [xyz_entry(growthMode=value)]}, dex="xyz", dex_index=1)

    assert spec.growth_mode is enabled


def test_no_cross_margin_mode() -> None:
    (spec,) = parse_meta(
        {"universe": [xyz_entry(marginMode="noCross", onlyIsolated=True)]}, dex="xyz", dex_index=1
    )

    assert spec.margin_mode is MarginMode.NO_CROSS and spec.isolated_only


def test_duplicate_names_are_kept_for_preflight_to_report() -> None:
    body = {"universe": [xyz_entry("xyz:TSLA"), xyz_entry("xyz:TSLA")]}

    assert [s.asset_id for s in parse_meta(body, dex="xyz", dex_index=1)] == [110000, 110001]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "meta(dex='xyz'): expected an object, got []"),
        ({}, "meta(dex='xyz').universe: expected a list, got None"),
        ({"universe": [None]}, "meta(dex='xyz').universe[0]: expected an object, got None"),
        ({"universe": [{"szDecimals": 2}]}, "universe[0].name: expected a string, got None"),
        ({"universe": [xyz_entry(szDecimals="3")]}, "universe[0].szDecimals: expected an integer, got '3'"),
        ({"universe": [xyz_entry(szDecimals=True)]}, "universe[0].szDecimals: expected an integer, got True"),
        (
            {"universe": [xyz_entry(maxLeverage=None)]},
            "universe[0].maxLeverage: expected an integer, got None",
        ),
        (
            {"universe": [xyz_entry(szDecimals=7)]},
            "universe[0]: xyz:TSLA: szDecimals must be in [0, 6], got 7",
        ),
        ({"universe": [xyz_entry(maxLeverage=0)]}, "universe[0]: xyz:TSLA: maxLeverage must be ≥ 1, got 0"),
        ({"universe": [xyz_entry(onlyIsolated="yes")]}, "universe[0].onlyIsolated: expected true or false"),
        ({"universe": [xyz_entry(isDelisted=1)]}, "universe[0].isDelisted: expected true or false, got 1"),
        ({"universe": [xyz_entry(marginMode="cross")]}, "universe[0].marginMode: expected one of normal, "),
        ({"universe": [xyz_entry(marginTableId="20")]}, "universe[0].marginTableId: expected an integer"),
        ({"universe": [xyz_entry(growthMode=True)]}, "universe[0].growthMode: expected a string, got True"),
        ({"universe": [xyz_entry(name="")]}, "universe[0].name: expected a non-empty market name"),
        ({"universe": [xyz_entry(name="TSLA")]}, "universe[0].name: expected a name starting with 'xyz:'"),
        (
            {"universe": [xyz_entry(name="abc:TSLA")]},
            "starting with 'xyz:' (meta of dex 'xyz'), got 'abc:TSLA'",
        ),
    ],
)
def test_a_malformed_meta_body_names_what_is_wrong(body: object, message: str) -> None:
    with pytest.raises(MetaError) as raised:
        parse_meta(body, dex="xyz", dex_index=1)

    assert message in str(raised.value)


def test_a_universe_too_long_for_the_asset_id_scheme_is_refused() -> None:
    body = {"universe": [xyz_entry(f"xyz:M{i}") for i in range(10_001)]}

    with pytest.raises(MetaError, match=r"universe\[10000\]: meta_index must be < 10000"):
        parse_meta(body, dex="xyz", dex_index=1)


def test_a_dex_name_and_index_that_do_not_fit_together_are_refused() -> None:
    with pytest.raises(MetaError, match="only the first dex"):
        parse_meta({"universe": [xyz_entry()]}, dex="xyz", dex_index=0)


def test_meta_error_is_a_value_error() -> None:
    assert issubclass(MetaError, ValueError)


# ------------------------------------------------------------------ perpDexs


def test_the_documented_perp_dexs_example_parses() -> None:
    first, xyz = parse_perp_dexs(json.loads(PERP_DEXS_EXAMPLE))

    assert (first.index, first.name, first.is_first) == (0, "", True)
    assert first.oi_caps == {} and first.funding_multipliers == {}
    assert (xyz.index, xyz.name, xyz.full_name, xyz.is_first) == (1, "xyz", "XYZ", False)
    assert xyz.deployer == "0x5e89b26d8d66da9888c835c9bfcc2aa51813e152"
    assert xyz.oi_caps == {"xyz:TSLA": Decimal("100000.0")}
    assert xyz.funding_multipliers == {"xyz:TSLA": Decimal("1.0")}


def test_a_null_after_the_first_dex_keeps_the_indices_of_later_dexes() -> None:
    body = [None, None, {"name": "flx", "fullName": "Felix"}]

    dexes = parse_perp_dexs(body)

    assert [(d.index, d.name) for d in dexes] == [(0, ""), (2, "flx")]
    assert dexes[1].oi_caps == {} and dexes[1].deployer is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "perpDexs: expected a list, got {}"),
        ([], "perpDexs[0]: expected null (the first dex), got []"),
        ([{"name": "xyz"}], "perpDexs[0]: expected null (the first dex), got {'name': 'xyz'}"),
        ([None, "xyz"], "perpDexs[1]: expected an object, got 'xyz'"),
        ([None, {"fullName": "XYZ"}], "perpDexs[1].name: expected a string, got None"),
        ([None, {"name": ""}], "perpDexs[1].name: expected a non-empty dex name"),
        ([None, {"name": "xyz"}, {"name": "xyz"}], "perpDexs[2]: dex 'xyz' is listed twice"),
        ([None, {"name": "xyz", "deployer": 5}], "perpDexs[1].deployer: expected a string, got 5"),
        (
            [None, {"name": "xyz", "assetToStreamingOiCap": {"xyz:TSLA": "1"}}],
            "perpDexs[1].assetToStreamingOiCap: expected a list",
        ),
        (
            [None, {"name": "xyz", "assetToStreamingOiCap": [["xyz:TSLA"]]}],
            "assetToStreamingOiCap[0]: expected a [coin, amount] pair",
        ),
        (
            [None, {"name": "xyz", "assetToStreamingOiCap": [["xyz:TSLA", 100000.0]]}],
            "assetToStreamingOiCap[0][1]: expected a string, got 100000.0",
        ),
        (
            [None, {"name": "xyz", "assetToStreamingOiCap": [["xyz:TSLA", "lots"]]}],
            "assetToStreamingOiCap[0][1]: expected a decimal string, got 'lots'",
        ),
        (
            [None, {"name": "xyz", "assetToStreamingOiCap": [["xyz:TSLA", "-1"]]}],
            "assetToStreamingOiCap[0][1]: expected a finite amount ≥ 0, got '-1'",
        ),
        (
            [None, {"name": "xyz", "assetToFundingMultiplier": [["xyz:A", "1"], ["xyz:A", "2"]]}],
            "assetToFundingMultiplier[1]: 'xyz:A' is listed twice",
        ),
    ],
)
def test_a_malformed_perp_dexs_body_names_what_is_wrong(body: object, message: str) -> None:
    with pytest.raises(MetaError) as raised:
        parse_perp_dexs(body)

    assert message in str(raised.value)


# ------------------------------------------------------------------ W-011


def test_w011_the_asset_id_ignores_the_position_in_the_oi_cap_list() -> None:
    """perpDexs lists SILVER at position 27 of its caps, meta(xyz) at 26: the asset id is 110026."""
    # meta lists markets in listing order; the cap list is sorted, so the later-listed AAPL comes first there
    meta_names = [*(f"xyz:M{i:02d}" for i in range(26)), "xyz:SILVER", "xyz:AAPL"]
    caps = [[name, "1000000.0"] for name in sorted(meta_names)]
    (_, xyz) = parse_perp_dexs([None, {"name": "xyz", "assetToStreamingOiCap": caps}])
    specs = parse_meta({"universe": [xyz_entry(name) for name in meta_names]}, dex="xyz", dex_index=xyz.index)

    assert list(xyz.oi_caps).index("xyz:SILVER") == 27
    silver = next(s for s in specs if s.name == "xyz:SILVER")
    assert silver.key == MarketKey("xyz", 1, 26)
    assert silver.asset_id == 110026
