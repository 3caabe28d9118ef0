"""Determinism by seed: the same scenario gives a client the same frames at the same virtual times."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from hip3.sim.harness import run_memory_sim
from hip3.sim.scenario import Scenario
from hip3.sim.scenario_file import default_scenario
from tests.sim_integration import SimClient, until_ms

RUN_MS = 59_000  # the last whole second before this silent client's 60 s idle close
COINS = ("BTC", "xyz:TSLA", "xyz:SILVER", "xyz:XYZ100", "flx:COIN")
CHANNELS = ("l2Book", "bbo", "activeAssetCtx")


async def _record(scenario: Scenario) -> list[str]:
    """Every frame an identical client receives in the first `RUN_MS`, as "<ms since start> <text>"."""
    async with trio.open_nursery() as nursery:
        sim = await nursery.start(run_memory_sim, scenario)
        start = trio.current_time()
        client = await SimClient.connect(sim, nursery)
        await client.subscribe(*({"type": channel, "coin": coin} for coin in COINS for channel in CHANNELS))
        frames = await client.receive_until(until_ms(start, RUN_MS))
        nursery.cancel_scope.cancel()
    lines = []
    for frame in frames:
        elapsed_ms = (frame.at - start) * 1000
        assert abs(elapsed_ms - round(elapsed_ms)) < 1e-6  # the market process acts on whole milliseconds
        lines.append(f"{round(elapsed_ms)} {frame.text}")
    return lines


@pytest.mark.deadline(300)
async def test_the_same_seed_gives_byte_identical_frames_and_another_seed_differs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    scenario = default_scenario()
    first = await _record(scenario)
    second = await _record(scenario)
    reseeded = await _record(attrs.evolve(scenario, seed=scenario.seed + 1))

    assert "\n".join(first).encode() == "\n".join(second).encode()
    # Enough happened to make the comparison mean something: every channel of every coin, at many times.
    assert len(first) > 500
    assert len({line.split(" ", 1)[0] for line in first}) > 50
    for coin in COINS:
        for channel in CHANNELS:
            assert any(f'"channel":"{channel}","data":{{"coin":"{coin}"' in line for line in first), (
                channel,
                coin,
            )

    assert reseeded != first
    assert len(reseeded) > 500
    # Same start prices: the seeds agree on the frames at 0 ms (15 acks, 5 book snapshots), then part at 3 s.
    at_start = [line for line in first if line.startswith("0 ")]
    assert len(at_start) == len(COINS) * (len(CHANNELS) + 1)
    assert reseeded[: len(at_start)] == at_start
    assert reseeded[len(at_start)] != first[len(at_start)]
    assert reseeded[len(at_start)].startswith("3000 ")
