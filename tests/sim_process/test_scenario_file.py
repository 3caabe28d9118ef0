"""Scenario files: the shipped scenarios load, values are exact, every problem is reported with its path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hip3.sim.scenario import MarketProcessDef, Scenario
from hip3.sim.scenario_file import (
    ScenarioError,
    default_scenario,
    load_scenario,
    parse_scenario,
    shipped_scenario,
)

MINIMAL = """
seed = 5
[[dexes]]
name = ""
[[dexes.markets]]
name = "BTC"
sz_decimals = 5
max_leverage = 40
start_price = 95000
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, source="test.toml")
    assert str(caught.value).startswith("test.toml: ")
    return caught.value.problems


def test_the_default_scenario_is_realistic() -> None:
    scenario = default_scenario()
    assert scenario.oracle_interval_ms == 3000
    assert scenario.max_oracle_move == Decimal("0.01")
    assert [dex.name for dex in scenario.dexes] == ["", "xyz", "flx"]
    first, xyz, flx = scenario.dexes
    assert {m.name: m.sz_decimals for m in first.markets} == {"BTC": 5, "ETH": 4}
    sz_decimals = {m.name: m.sz_decimals for m in xyz.markets}
    expected = {"TSLA": 3, "NVDA": 3, "SILVER": 2, "GOLD": 4, "CL": 3, "PLATINUM": 4, "XYZ100": 4}
    assert sz_decimals == expected
    assert xyz.full_name == "XYZ"
    assert all(m.oi_cap_usd is not None for m in xyz.markets)
    assert any(m.is_delisted for m in flx.markets) and any(m.growth_mode for m in flx.markets)
    for market in (m for dex in scenario.dexes for m in dex.markets):
        assert 5 <= market.process.spread_bps <= 20 or market.is_delisted
        assert 500 <= market.process.quote_lag_ms <= 2000
    assert first.markets[0].margin_mode is None and not first.markets[0].only_isolated
    assert scenario.accounts == ()


@pytest.mark.parametrize("name", ["default", "calm", "jumpy", "two_dex"])
def test_every_shipped_scenario_loads(name: str) -> None:
    assert isinstance(shipped_scenario(name), Scenario)


def test_an_unknown_shipped_scenario_is_named() -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        shipped_scenario("nope")


def test_load_scenario_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    assert load_scenario(path).seed == 5
    path.write_text(MINIMAL + "sead = 1\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"mine\.toml"):
        load_scenario(path)


def test_decimals_are_exact_whether_float_literal_integer_or_string() -> None:
    text = MINIMAL.replace("start_price = 95000", 'start_price = "9500.5"') + (
        "\nfunding_multiplier = 0.1\noi_cap_usd = 1_000_000\n"
        "[fees]\ntaker_bps = 0.1\nmaker_bps = -0.2\n"
        '[[accounts]]\naddress = "0x00000000000000000000000000000000000000AA"\nusdc = 1234.56789\n'
    )
    scenario = parse_scenario(text, source="test.toml")
    market = scenario.dexes[0].markets[0]
    assert market.start_price == Decimal("9500.5")
    assert str(market.funding_multiplier) == "0.1"
    assert market.oi_cap_usd == Decimal(1_000_000)
    assert (scenario.fees.taker_bps, scenario.fees.maker_bps) == (Decimal("0.1"), Decimal("-0.2"))
    assert str(scenario.accounts[0].usdc) == "1234.56789"
    assert scenario.accounts[0].address == "0x00000000000000000000000000000000000000aa"


def test_process_defaults_apply_and_a_market_overrides_them() -> None:
    text = (
        MINIMAL
        + "[dexes.markets.process]\nspread_bps = 6.5\n"
        + '[[dexes.markets]]\nname = "ETH"\nsz_decimals = 4\nmax_leverage = 25\nstart_price = 3500\n'
        + "[process_defaults]\nspread_bps = 12\nquote_lag_ms = 700\n"
    )
    btc, eth = parse_scenario(text, source="test.toml").dexes[0].markets
    assert btc.process == MarketProcessDef(spread_bps=6.5, quote_lag_ms=700)
    assert eth.process == MarketProcessDef(spread_bps=12.0, quote_lag_ms=700)


def test_a_typo_names_the_nearest_valid_key() -> None:
    assert _problems(MINIMAL + "sz_decimal = 3\n") == [
        "dexes[0].markets[0].sz_decimal: unknown key 'sz_decimal'; did you mean 'sz_decimals'?"
    ]
    assert _problems("oracle_intervall_ms = 3000\n" + MINIMAL) == [
        "oracle_intervall_ms: unknown key 'oracle_intervall_ms'; did you mean 'oracle_interval_ms'?"
    ]


def test_an_unknown_key_with_nothing_close_lists_the_valid_ones() -> None:
    (problem,) = _problems(MINIMAL + "[fees]\nbananas = 1\n")
    assert problem == "fees.bananas: unknown key 'bananas'; valid keys: taker_bps, maker_bps"


def test_a_wrong_type_says_what_was_expected_and_what_was_found() -> None:
    assert _problems(MINIMAL.replace("sz_decimals = 5", 'sz_decimals = "5"')) == [
        "dexes[0].markets[0].sz_decimals: expected an integer, got '5' (string)"
    ]
    assert _problems("seed = true\n" + MINIMAL.replace("seed = 5\n", "")) == [
        "seed: expected an integer, got True (boolean)"
    ]


def test_every_problem_is_reported_at_once_with_its_dotted_path() -> None:
    text = """
seed = 1.5
max_oracle_move = 2
[process_defaults]
jump_probability = 1.5
[[dexes]]
name = "oops"
[[dexes.markets]]
name = "BTC"
sz_decimals = 5
max_leverage = 40
start_price = 95000
[[dexes]]
name = "xyz"
deployer = "0x123"
[[dexes.markets]]
name = "TSLA"
sz_decimals = 3
max_leverage = 10
start_price = 430.555
[[dexes.markets]]
name = "NVDA"
sz_decimals = 9
max_leverage = 10
start_price = 180
[dexes.markets.process]
levels = 0
[[dexes.markets]]
name = "TSLA"
max_leverage = 10
start_price = 430
margin_mode = "cross"
[[accounts]]
address = "0x0000000000000000000000000000000000000001"
"""
    assert _problems(text) == [
        "seed: expected an integer, got Decimal('1.5') (float)",
        "max_oracle_move: must be in [0, 1], got 2",
        "process_defaults.jump_probability: must be in [0, 1], got 1.5",
        "dexes[0].name: the first dex must have the empty name \"\", got 'oops'",
        "dexes[1].deployer: expected 0x followed by 40 hex digits, got '0x123'",
        "dexes[1].markets[0].start_price: 430.555 is not a valid price for szDecimals 3 "
        "(5 significant figures, at most 3 decimals)",
        "dexes[1].markets[1].sz_decimals: must be in [0, 6], got 9",
        "dexes[1].markets[1].process.levels: must be in [1, 100], got 0",
        "dexes[1].markets[2].margin_mode: expected one of strictIsolated, noCross, normal, none, got 'cross'",
        "dexes[1].markets[2].sz_decimals: required",
        "accounts[0].usdc: required",
    ]


def test_duplicate_names_point_at_the_second_one() -> None:
    text = MINIMAL + MINIMAL.split("[[dexes.markets]]")[1].join(["[[dexes.markets]]", ""])
    assert _problems(text) == ["dexes[0].markets[1]: duplicate market name 'BTC'"]


def test_a_file_needs_a_first_dex() -> None:
    assert _problems("seed = 1\n") == ['dexes: at least one dex is required (the first dex, name = "")']
    assert _problems("dexes = 3\n") == ["dexes: expected an array of tables ([[dexes]]), got 3 (integer)"]


def test_a_builder_dex_beyond_growth_mode_fee_scale_is_refused() -> None:
    text = MINIMAL + (
        '[[dexes]]\nname = "xyz"\ndeployer_fee_scale = 5\n'
        '[[dexes.markets]]\nname = "TSLA"\nsz_decimals = 3\nmax_leverage = 10\nstart_price = 430\n'
    )
    assert _problems(text) == ["dexes[1].deployer_fee_scale: must be ≤ 3 without growth mode"]
    growth = parse_scenario(text + "growth_mode = true\n", source="test.toml")
    assert growth.dexes[1].deployer_fee_scale == 5


def test_toml_syntax_errors_are_scenario_errors() -> None:
    (problem,) = _problems("seed = = 1\n")
    assert problem.startswith("TOML syntax: ")
