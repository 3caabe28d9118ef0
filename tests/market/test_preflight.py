"""Preflight: the configured markets against what discovery found in the simulator's default scenario."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest
import trio
import trio.testing

from hip3.core.market import MarketKey, MarketSpec
from hip3.market.preflight import PreflightError, PreflightReport, preflight, require_clean
from hip3.market.registry import MarketRegistry, discover
from hip3.protocol.meta import PerpDex
from hip3.sim.harness import MemorySim, run_memory_sim
from hip3.sim.scenario_file import default_scenario
from tests.market import SimInfo


@pytest.fixture
async def sim_info(nursery: trio.Nursery) -> AsyncIterator[SimInfo]:
    sim: MemorySim = await nursery.start(run_memory_sim, default_scenario())
    async with sim.http_client() as client:
        yield SimInfo(client)


async def check(
    source: SimInfo,
    *,
    allowlist: Sequence[str],
    mode: str = "observation",
    dexes: Sequence[str] = (),
) -> PreflightReport:
    registry = await discover(source, dexes=dexes)
    return preflight(registry, allowlist=allowlist, mode=mode, dexes_named=dexes)


async def test_a_good_configuration_passes_with_the_margin_warning(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    registry = await discover(sim_info, dexes=["xyz"])

    report = preflight(registry, allowlist=["xyz:TSLA", "xyz:SILVER"], mode="trading", dexes_named=["xyz"])

    assert report.errors == [] and report.ok
    assert report.warnings == [
        "isolated margin will be used for the isolated-only markets: "
        "xyz:TSLA (strictIsolated), xyz:SILVER (strictIsolated)"
    ]
    require_clean(report)  # warnings do not stop the bot
    assert all(registry.spec(coin) is not None for coin in ["xyz:TSLA", "xyz:SILVER"])  # W-008


@pytest.mark.parametrize(
    ("coin", "suggestion"),
    [
        ("xyz:SILVR", 'did you mean "xyz:SILVER"?'),
        ("xyz:tsla", 'did you mean "xyz:TSLA"?'),
        ("flx:CON", '"flx:COIN"'),
    ],
)
async def test_a_missing_market_is_named_with_close_matches(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo, coin: str, suggestion: str
) -> None:
    report = await check(sim_info, allowlist=[coin])

    (error,) = report.errors
    assert error.startswith(f"market {coin!r} was not found among the discovered markets")
    assert suggestion in error


async def test_close_matches_span_every_discovered_dex(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    report = await check(sim_info, allowlist=["xyz:COIN"])

    assert report.errors == [
        "market 'xyz:COIN' was not found among the discovered markets; did you mean \"flx:COIN\"?"
    ]


async def test_a_missing_market_without_anything_close(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    report = await check(sim_info, allowlist=["xyz:QQQQQQQQ"])

    assert report.errors == ["market 'xyz:QQQQQQQQ' was not found among the discovered markets"]


async def test_a_market_on_a_dex_left_out_of_discovery_says_so(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    report = await check(sim_info, allowlist=["flx:COIN"], dexes=["xyz"])

    (error,) = report.errors
    assert "(its dex 'flx' was not discovered: add it to markets.dexes)" in error


async def test_a_configured_dex_perp_dexs_does_not_list_is_an_error(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    report = await check(sim_info, allowlist=["xyz:TSLA"], dexes=["xyz", "abc"])

    assert report.errors == ["dex 'abc' is configured but perpDexs does not list it (listed: xyz, flx)"]


async def test_a_delisted_market_is_an_error_when_trading(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    report = await check(sim_info, allowlist=["flx:OLDX"], mode="trading")

    assert report.errors == ["market 'flx:OLDX' is delisted and cannot be traded"]


async def test_a_delisted_market_is_a_warning_when_observing(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    report = await check(sim_info, allowlist=["flx:OLDX"], mode="observation")

    assert report.errors == []
    assert report.warnings[0] == "market 'flx:OLDX' is delisted; it has no live market to observe"


async def test_observing_every_market_checks_every_market(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    report = await check(sim_info, allowlist=[], mode="observation")

    assert report.errors == []
    delisted, isolated = report.warnings
    assert delisted == "market 'flx:OLDX' is delisted; it has no live market to observe"
    assert "xyz:XYZ100 (strictIsolated)" in isolated and "flx:CRCL (noCross)" in isolated


async def test_trading_needs_an_allowlist(autojump_clock: trio.testing.MockClock, sim_info: SimInfo) -> None:
    report = await check(sim_info, allowlist=[], mode="trading")

    assert report.errors == [
        "trading mode needs an explicit, non-empty market allowlist ([[markets.allowlist]])"
    ]


async def test_an_unknown_mode_is_an_error(autojump_clock: trio.testing.MockClock, sim_info: SimInfo) -> None:
    report = await check(sim_info, allowlist=["xyz:TSLA"], mode="live")

    assert report.errors == ["unknown mode 'live'; expected one of observation, trading"]


async def test_an_allowlist_entry_given_twice_is_an_error(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    report = await check(sim_info, allowlist=["xyz:TSLA", "xyz:GOLD", "xyz:TSLA"])

    assert report.errors == ["market 'xyz:TSLA' is in the allowlist more than once"]


def test_a_market_name_the_exchange_lists_twice_is_an_error() -> None:
    specs = [
        MarketSpec("xyz:GOLD", MarketKey("xyz", 1, 0), 4, 20),
        MarketSpec("xyz:Gold", MarketKey("xyz", 1, 1), 4, 20),
    ]
    registry = MarketRegistry([PerpDex(0, ""), PerpDex(1, "xyz")], specs)

    report = preflight(registry, allowlist=["xyz:GOLD"], mode="observation", dexes_named=["xyz"])

    assert report.errors == [
        "the exchange lists market name 'xyz:GOLD' more than once",
        "the exchange lists market name 'xyz:Gold' more than once",
    ]


async def test_every_error_is_reported_at_once(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    report = await check(
        sim_info,
        allowlist=["xyz:SILVR", "flx:OLDX", "xyz:TSLA", "xyz:TSLA"],
        mode="trading",
        dexes=["xyz", "flx", "abc"],
    )

    with pytest.raises(PreflightError) as raised:
        require_clean(report)

    assert raised.value.errors == [
        "dex 'abc' is configured but perpDexs does not list it (listed: xyz, flx)",
        "market 'xyz:TSLA' is in the allowlist more than once",
        "market 'xyz:SILVR' was not found among the discovered markets; did you mean \"xyz:SILVER\"?",
        "market 'flx:OLDX' is delisted and cannot be traded",
    ]
    message = str(raised.value)
    assert message.startswith("preflight failed with 4 error(s):\n")
    assert all(f"  - {error}" in message for error in raised.value.errors)
