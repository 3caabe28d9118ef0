"""Discovery against the in-memory simulator, the spec table, refresh and change detection."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
import trio
import trio.testing
from structlog.testing import capture_logs

from hip3.core.market import MarginMode, MarketKey, MarketSpec
from hip3.market.registry import (
    MarketRegistry,
    SpecChange,
    apply_refresh,
    discover,
    run_spec_refresh,
)
from hip3.protocol.meta import MetaError, PerpDex
from hip3.sim.harness import MemorySim, run_memory_sim
from hip3.sim.scenario_file import default_scenario
from tests.market import CannedInfo, SimInfo

XYZ_ASSET_IDS = {
    "xyz:TSLA": 110000,
    "xyz:NVDA": 110001,
    "xyz:SILVER": 110002,
    "xyz:GOLD": 110003,
    "xyz:CL": 110004,
    "xyz:PLATINUM": 110005,
    "xyz:XYZ100": 110006,
}
FLX_ASSET_IDS = {"flx:COIN": 120000, "flx:CRCL": 120001, "flx:OLDX": 120002}


@pytest.fixture
async def sim(nursery: trio.Nursery) -> MemorySim:
    started: MemorySim = await nursery.start(run_memory_sim, default_scenario())
    return started


@pytest.fixture
async def sim_info(sim: MemorySim) -> AsyncIterator[SimInfo]:
    async with sim.http_client() as client:
        yield SimInfo(client)


def asset_ids(registry: MarketRegistry) -> dict[str, int]:
    return {spec.name: spec.asset_id for spec in registry.specs}


def spec_of(registry: MarketRegistry, coin: str) -> MarketSpec:
    spec = registry.spec(coin)
    assert spec is not None, f"{coin} not discovered"
    return spec


# ------------------------------------------------------------------ discovery


async def test_discovers_both_builder_dexes_with_asset_ids_from_meta(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    registry = await discover(sim_info)

    assert asset_ids(registry) == XYZ_ASSET_IDS | FLX_ASSET_IDS
    assert registry.coins == (*XYZ_ASSET_IDS, *FLX_ASSET_IDS)  # meta order, dex by dex
    assert registry.spec("BTC") is None  # the first dex is read only when asked for
    assert [(d.index, d.name) for d in registry.dexes] == [(0, ""), (1, "xyz"), (2, "flx")]


async def test_discovered_specs_come_from_meta_and_caps_from_perp_dexs(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    registry = await discover(sim_info)

    def spec(coin: str) -> MarketSpec:
        found = registry.spec(coin)
        assert found is not None
        return found

    tsla, silver, coin, crcl, oldx = (
        spec(c) for c in ("xyz:TSLA", "xyz:SILVER", "flx:COIN", "flx:CRCL", "flx:OLDX")
    )
    assert (tsla.sz_decimals, tsla.max_leverage, tsla.margin_table_id) == (3, 10, 10)
    assert (silver.sz_decimals, silver.max_leverage) == (2, 20)
    assert tsla.only_isolated and tsla.margin_mode is MarginMode.STRICT_ISOLATED
    assert coin.growth_mode and not tsla.growth_mode
    assert crcl.margin_mode is MarginMode.NO_CROSS and crcl.max_leverage == 5
    assert oldx.is_delisted and not crcl.is_delisted
    assert registry.oi_cap("xyz:TSLA") == Decimal("50000000")
    assert registry.oi_cap("xyz:PLATINUM") == Decimal("5000000")
    assert registry.oi_cap("flx:CRCL") == Decimal("2000000")
    assert registry.oi_cap("flx:OLDX") is None  # the delisted market has no cap
    assert registry.oi_cap("xyz:NOPE") is None


async def test_discovering_only_xyz(autojump_clock: trio.testing.MockClock, sim_info: SimInfo) -> None:
    registry = await discover(sim_info, dexes=["xyz"])

    assert registry.coins == tuple(XYZ_ASSET_IDS)
    assert registry.spec("flx:COIN") is None and registry.oi_cap("flx:COIN") is None
    assert registry.dex("flx") is not None  # still listed by perpDexs, just not discovered


async def test_the_first_dex_is_discovered_when_named_as_empty(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    registry = await discover(sim_info, dexes=["", "flx"])

    assert asset_ids(registry) == {"BTC": 0, "ETH": 1} | FLX_ASSET_IDS


async def test_a_dex_perp_dexs_does_not_list_is_skipped_for_preflight_to_report(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    registry = await discover(sim_info, dexes=["xyz", "nope"])

    assert registry.coins == tuple(XYZ_ASSET_IDS) and registry.dex("nope") is None


async def test_u_dex_id_mismatch_the_same_key_serves_every_lookup(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    registry = await discover(sim_info)

    tsla = registry.spec("xyz:TSLA")
    assert tsla is not None and tsla.key == MarketKey("xyz", 1, 0)
    assert registry.by_asset(110000) is tsla
    for coin in registry.coins:
        spec = registry.spec(coin)
        assert spec is not None and registry.by_asset(spec.asset_id) is spec
    assert registry.by_asset(0) is None and registry.by_asset(110007) is None


async def test_w011_discovery_uses_the_meta_index_not_the_cap_list_position() -> None:
    meta_names = [*(f"xyz:M{i:02d}" for i in range(26)), "xyz:SILVER", "xyz:AAPL"]
    caps = [[name, "1000000.0"] for name in sorted(meta_names)]  # SILVER at position 27 here
    source = CannedInfo(
        perp_dexs=[None, {"name": "xyz", "assetToStreamingOiCap": caps}],
        metas={"xyz": {"universe": [market("xyz:" + n.partition(":")[2]) for n in meta_names]}},
    )

    registry = await discover(source)

    silver = registry.by_asset(110026)
    assert silver is not None and silver.name == "xyz:SILVER"
    assert registry.spec("xyz:SILVER") is silver
    assert registry.oi_cap("xyz:SILVER") == Decimal("1000000.0")


async def test_a_malformed_meta_fails_discovery_with_meta_error() -> None:
    source = CannedInfo(perp_dexs=[None, {"name": "xyz"}], metas={"xyz": {"universe": [{"name": "xyz:A"}]}})

    with pytest.raises(MetaError, match=r"meta\(dex='xyz'\)\.universe\[0\]\.szDecimals"):
        await discover(source)


# ------------------------------------------------------------------ the table


def market(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "szDecimals": 2, "maxLeverage": 10, "onlyIsolated": True, **fields}


def canned_xyz() -> CannedInfo:
    caps = [["xyz:GOLD", "25000000.0"], ["xyz:SILVER", "10000000.0"], ["xyz:TSLA", "50000000.0"]]
    return CannedInfo(
        perp_dexs=[None, {"name": "xyz", "assetToStreamingOiCap": caps}],
        metas={
            "xyz": {"universe": [market("xyz:TSLA", szDecimals=3), market("xyz:SILVER"), market("xyz:GOLD")]}
        },
    )


def universe(source: CannedInfo) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = source.metas["xyz"]["universe"]
    return entries


def test_unknown_and_delisted_markets_are_blocked() -> None:
    key = MarketKey("xyz", 1, 0)
    registry = MarketRegistry(
        [PerpDex(0, ""), PerpDex(1, "xyz")], [MarketSpec("xyz:OLD", key, 1, 3, is_delisted=True)]
    )

    assert registry.is_blocked("xyz:OLD") == "xyz:OLD is delisted"
    assert registry.is_blocked("xyz:NEW") == "xyz:NEW is not a discovered market"
    registry.unblock("xyz:OLD")
    assert registry.is_blocked("xyz:OLD") == "xyz:OLD is delisted"


def test_duplicate_names_keep_the_first_entry_and_are_listed() -> None:
    specs = [
        MarketSpec("xyz:A", MarketKey("xyz", 1, 0), 2, 10),
        MarketSpec("xyz:a", MarketKey("xyz", 1, 1), 2, 10),
        MarketSpec("xyz:A", MarketKey("xyz", 1, 2), 2, 10),
        MarketSpec("xyz:B", MarketKey("xyz", 1, 3), 2, 10),
    ]
    registry = MarketRegistry([PerpDex(0, ""), PerpDex(1, "xyz")], specs)

    assert registry.duplicate_names == ("xyz:A", "xyz:a", "xyz:A")
    assert registry.spec("xyz:A") is specs[0] and registry.by_asset(110000) is specs[0]
    assert registry.coins == ("xyz:A", "xyz:a", "xyz:B")


def test_block_reasons_accumulate_and_unblock_clears_them() -> None:
    registry = MarketRegistry(
        [PerpDex(0, ""), PerpDex(1, "xyz")], [MarketSpec("xyz:A", MarketKey("xyz", 1, 0), 2, 10)]
    )

    registry.block("xyz:A", "first")
    registry.block("xyz:A", "second")

    assert registry.is_blocked("xyz:A") == "first; second"
    registry.unblock("xyz:A")
    assert registry.is_blocked("xyz:A") is None


# ------------------------------------------------------------------ refresh


async def test_a_sz_decimals_change_blocks_only_that_market(
    autojump_clock: trio.testing.MockClock, sim: MemorySim, sim_info: SimInfo
) -> None:
    registry = await discover(sim_info)

    sim.faults.change_sz_decimals("xyz:TSLA", 1)
    changes = apply_refresh(registry, await discover(sim_info))

    assert changes == [SpecChange("xyz:TSLA", "sz_decimals", 3, 1)]
    assert changes[0].blocks_entries
    reason = registry.is_blocked("xyz:TSLA")
    assert reason is not None and "sz_decimals 3 → 1" in reason
    assert spec_of(registry, "xyz:TSLA").sz_decimals == 1  # rounding uses the new one
    assert registry.by_asset(110000) is registry.spec("xyz:TSLA")
    assert [c for c in registry.coins if registry.is_blocked(c)] == ["xyz:TSLA", "flx:OLDX"]  # OLDX: delisted
    registry.unblock("xyz:TSLA")
    assert registry.is_blocked("xyz:TSLA") is None


async def test_an_unchanged_refresh_reports_nothing(
    autojump_clock: trio.testing.MockClock, sim_info: SimInfo
) -> None:
    registry = await discover(sim_info)

    assert apply_refresh(registry, await discover(sim_info)) == []
    assert [c for c in registry.coins if registry.is_blocked(c)] == ["flx:OLDX"]


def edit_leverage(source: CannedInfo) -> None:
    universe(source)[1]["maxLeverage"] = 5


def edit_delisting(source: CannedInfo) -> None:
    universe(source)[1]["isDelisted"] = True


def edit_order(source: CannedInfo) -> None:
    entries = universe(source)
    entries[1], entries[2] = entries[2], entries[1]


def edit_margin_mode(source: CannedInfo) -> None:
    universe(source)[1]["marginMode"] = "noCross"


def edit_only_isolated(source: CannedInfo) -> None:
    universe(source)[1]["onlyIsolated"] = False


def edit_growth_mode(source: CannedInfo) -> None:
    universe(source)[1]["growthMode"] = "enabled"


def edit_oi_cap(source: CannedInfo) -> None:
    source.perp_dexs[1]["assetToStreamingOiCap"][1] = ["xyz:SILVER", "20000000.0"]


@pytest.mark.parametrize(
    ("edit", "expected", "blocked"),
    [
        (edit_leverage, [SpecChange("xyz:SILVER", "max_leverage", 10, 5)], ["xyz:SILVER"]),
        (edit_delisting, [SpecChange("xyz:SILVER", "listing", "listed", "delisted")], ["xyz:SILVER"]),
        (
            edit_order,
            [
                SpecChange("xyz:SILVER", "asset_id", 110001, 110002),
                SpecChange("xyz:GOLD", "asset_id", 110002, 110001),
            ],
            ["xyz:GOLD", "xyz:SILVER"],  # table order follows the fresh meta
        ),
        (edit_margin_mode, [SpecChange("xyz:SILVER", "margin_mode", "normal", "noCross")], []),
        (edit_only_isolated, [SpecChange("xyz:SILVER", "only_isolated", True, False)], []),
        (edit_growth_mode, [SpecChange("xyz:SILVER", "growth_mode", False, True)], []),
        (
            edit_oi_cap,
            [SpecChange("xyz:SILVER", "oi_cap", Decimal("10000000.0"), Decimal("20000000.0"))],
            [],
        ),
    ],
)
async def test_which_changes_block_new_entries(
    edit: Callable[[CannedInfo], None], expected: list[SpecChange], blocked: list[str]
) -> None:
    source = canned_xyz()
    registry = await discover(source)

    edit(source)
    changes = apply_refresh(registry, await discover(source))

    assert changes == expected
    assert [c for c in registry.coins if registry.is_blocked(c)] == blocked
    assert registry.oi_cap("xyz:SILVER") == (await discover(source)).oi_cap("xyz:SILVER")


async def test_a_vanished_market_keeps_its_spec_and_stays_blocked() -> None:
    source = canned_xyz()
    registry = await discover(source)
    silver = registry.spec("xyz:SILVER")

    del universe(source)[1:]  # SILVER and GOLD leave meta (and GOLD's cap perpDexs)
    source.perp_dexs[1]["assetToStreamingOiCap"] = source.perp_dexs[1]["assetToStreamingOiCap"][1:]
    changes = apply_refresh(registry, await discover(source))

    assert changes == [
        SpecChange("xyz:SILVER", "listing", "listed", "absent"),
        SpecChange("xyz:GOLD", "listing", "listed", "absent"),
        SpecChange("xyz:GOLD", "oi_cap", Decimal("25000000.0"), None),
    ]
    assert registry.spec("xyz:SILVER") is silver and registry.by_asset(110001) is silver  # positions resolve
    registry.unblock("xyz:SILVER")
    assert registry.is_blocked("xyz:SILVER") == "xyz:SILVER is no longer listed in meta(dex='xyz')"
    assert apply_refresh(registry, await discover(source)) == []  # still gone: nothing new to report


async def test_a_new_market_is_reported_and_blocked_until_an_operator_unblocks_it() -> None:
    source = canned_xyz()
    registry = await discover(source)

    universe(source).append(market("xyz:NVDA"))
    changes = apply_refresh(registry, await discover(source))

    assert changes == [SpecChange("xyz:NVDA", "listing", "absent", "listed")]
    assert registry.by_asset(110003) is registry.spec("xyz:NVDA")
    assert registry.is_blocked("xyz:NVDA") == "spec changed: listing absent → listed"
    registry.unblock("xyz:NVDA")
    assert registry.is_blocked("xyz:NVDA") is None


async def test_a_market_that_comes_back_is_a_listing_change() -> None:
    source = canned_xyz()
    registry = await discover(source)
    original = copy.deepcopy(source.metas)

    del universe(source)[2]
    apply_refresh(registry, await discover(source))
    source.metas = original
    changes = apply_refresh(registry, await discover(source))

    assert changes == [SpecChange("xyz:GOLD", "listing", "absent", "listed")]
    assert (
        registry.is_blocked("xyz:GOLD")
        == "spec changed: listing listed → absent; spec changed: listing absent → listed"
    )


# ------------------------------------------------------------------ the periodic task


@pytest.mark.deadline(600)
async def test_refreshes_at_exact_intervals_and_survives_a_failure(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = canned_xyz()
    registry = await discover(source)
    source.perp_dexs_times.clear()
    seen: list[tuple[float, list[SpecChange]]] = []
    start = trio.current_time()

    with capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: run_spec_refresh(
                    registry,
                    source,
                    interval_s=30,
                    on_change=lambda changes: seen.append((trio.current_time() - start, changes)),
                    task_status=task_status,
                )
            )
            assert source.perp_dexs_times == []  # started at once, first refresh one interval later
            await trio.sleep_until(start + 45)
            source.failures_left = 1
            universe(source)[0]["szDecimals"] = 1
            await trio.sleep_until(start + 75)
            assert seen == []  # the refresh at 60 failed
            await trio.sleep_until(start + 125)
            nursery.cancel_scope.cancel()

    assert [t - start for t in source.perp_dexs_times] == [30.0, 60.0, 90.0, 120.0]
    assert seen == [(90.0, [SpecChange("xyz:TSLA", "sz_decimals", 3, 1)])]
    assert [entry["event"] for entry in logs] == ["spec_refresh_failed", "spec_changes"]
    assert "503 from /info" in logs[0]["error"]


@pytest.mark.deadline(600)
async def test_a_refresh_slower_than_the_interval_is_abandoned(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = canned_xyz()
    registry = await discover(source)
    source.perp_dexs_times.clear()
    start = trio.current_time()
    source.delay_s = 45

    with capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: run_spec_refresh(
                    registry, source, interval_s=30, on_change=lambda _: None, task_status=task_status
                )
            )
            await trio.sleep_until(start + 85)
            source.delay_s = 0
            await trio.sleep_until(start + 125)
            nursery.cancel_scope.cancel()

    # 30: starts, gives up at 60 (slot 60 is gone by then); 90 and 120 run normally
    assert [t - start for t in source.perp_dexs_times] == [30.0, 90.0, 120.0]
    assert [entry["event"] for entry in logs] == ["spec_refresh_timed_out"]


@pytest.mark.deadline(600)
async def test_a_spec_change_in_the_simulator_reaches_the_operator_at_the_next_refresh(
    autojump_clock: trio.testing.MockClock, nursery: trio.Nursery, sim: MemorySim, sim_info: SimInfo
) -> None:
    registry = await discover(sim_info)
    start = trio.current_time()
    events: list[tuple[float, list[SpecChange]]] = []
    await nursery.start(
        lambda task_status: run_spec_refresh(
            registry,
            sim_info,
            interval_s=60,
            on_change=lambda changes: events.append((trio.current_time() - start, changes)),
            task_status=task_status,
        )
    )

    await trio.sleep(100)
    sim.faults.change_sz_decimals("flx:COIN", 3)
    await trio.sleep(100)

    assert events == [(120.0, [SpecChange("flx:COIN", "sz_decimals", 2, 3)])]
    assert registry.is_blocked("flx:COIN") is not None and registry.is_blocked("xyz:TSLA") is None


async def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval_s must be > 0"):
        await run_spec_refresh(MarketRegistry([], []), canned_xyz(), interval_s=0, on_change=lambda _: None)
