"""Nonces stay strictly increasing; the clock offset is measured and skew is detected."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from hip3.core.clock import trio_wall_clock
from hip3.execution.nonce import ClockSyncError, NonceManager, SkewState, measure_offset, run_clock_sync
from hip3.sim.harness import MemorySim, run_memory_sim
from hip3.sim.scenario_file import shipped_scenario

START_MS = 1_767_225_600_000


class FakeWall:
    def __init__(self, ms: int = START_MS) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_a_burst_in_one_millisecond_is_strictly_increasing() -> None:
    nonces = NonceManager(FakeWall())
    burst = [nonces.next() for _ in range(1000)]
    assert burst == list(range(START_MS, START_MS + 1000))


def test_a_clock_that_steps_back_never_repeats_a_nonce() -> None:
    wall = FakeWall()
    nonces = NonceManager(wall)
    first = nonces.next()
    wall.ms -= 10_000
    assert nonces.next() == first + 1
    wall.ms += 20_000
    assert nonces.next() == START_MS + 10_000


@given(steps=st.lists(st.integers(min_value=-5_000, max_value=5_000), min_size=1, max_size=200))
def test_nonces_increase_whatever_the_clock_does(steps: list[int]) -> None:
    wall = FakeWall()
    nonces = NonceManager(wall)
    issued = []
    for step in steps:
        wall.ms += step
        issued.append(nonces.next())
    assert all(b > a for a, b in itertools.pairwise(issued))
    assert issued[-1] >= wall.ms


def test_the_measured_offset_moves_nonces() -> None:
    wall = FakeWall()
    nonces = NonceManager(wall)
    reading = nonces.observe(server_ms=START_MS + 1_500, sent_ms=START_MS - 100, received_ms=START_MS + 100)
    assert (reading.offset_ms, reading.round_trip_ms, reading.state) == (1_500, 200, SkewState.OK)
    assert nonces.next() == START_MS + 1_500


@pytest.mark.parametrize(
    ("offset", "state"),
    [(0, SkewState.OK), (2_000, SkewState.OK), (2_001, SkewState.WARN), (-4_000, SkewState.WARN),
     (5_001, SkewState.BLOCK), (-9_000, SkewState.BLOCK)],
)  # fmt: skip
def test_skew_states(offset: int, state: SkewState) -> None:
    nonces = NonceManager(FakeWall(), warn_ms=2_000, block_ms=5_000)
    assert nonces.skew_state is SkewState.UNMEASURED
    nonces.observe(server_ms=START_MS + offset, sent_ms=START_MS, received_ms=START_MS)
    assert nonces.skew_state is state
    blocked = nonces.blocked_reason
    assert (blocked is not None) is (state is SkewState.BLOCK)
    if blocked:
        assert blocked == f"clock skew {offset} ms against the exchange exceeds the 5000 ms bound"


def test_a_blocking_skew_clears_when_a_later_measurement_is_fine() -> None:
    nonces = NonceManager(FakeWall())
    nonces.observe(START_MS + 60_000, START_MS, START_MS)
    assert nonces.skew_state is SkewState.BLOCK
    nonces.observe(START_MS + 10, START_MS, START_MS)
    assert nonces.skew_state is SkewState.OK and nonces.blocked_reason is None


def test_bounds_must_make_sense() -> None:
    with pytest.raises(ValueError, match="warn_ms"):
        NonceManager(FakeWall(), warn_ms=5_000, block_ms=2_000)


async def test_measurement_uses_the_round_trip_midpoint() -> None:
    wall = FakeWall()

    async def info(request: Mapping[str, Any]) -> Any:
        wall.ms += 300  # the answer takes 300 ms; the exchange stamped it halfway
        return {"time": START_MS + 150 + 2_500}

    nonces = NonceManager(wall)
    reading = await measure_offset(nonces, info, {"type": "l2Book", "coin": "BTC"}, wall)
    assert (reading.offset_ms, reading.round_trip_ms, reading.state) == (2_500, 300, SkewState.WARN)


async def test_an_answer_without_time_is_an_error() -> None:
    async def info(request: Mapping[str, Any]) -> Any:
        return {"levels": []}

    with pytest.raises(ClockSyncError, match="l2Book answer has no integer `time`"):
        await measure_offset(NonceManager(FakeWall()), info, {"type": "l2Book"}, FakeWall())


@pytest.mark.deadline(120)
async def test_periodic_sync_detects_the_simulators_skew_at_exact_times(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim: MemorySim = await nursery.start(run_memory_sim, shipped_scenario("calm"))
    wall = trio_wall_clock(START_MS)  # the simulator's wall clock starts at the same instant
    start = trio.current_time()
    measured_at: list[float] = []

    async def info(request: Mapping[str, Any]) -> Any:
        measured_at.append(trio.current_time() - start)
        async with sim.http_client() as http:
            return (await http.post("/info", json=dict(request))).json()

    nonces = NonceManager(wall)
    request = {"type": "l2Book", "coin": "xyz:TSLA"}
    first = await nursery.start(
        lambda task_status: run_clock_sync(
            nonces, info, request, wall, interval_s=30, task_status=task_status
        )
    )
    assert first is not None and first.state is SkewState.OK and first.offset_ms == 0
    sim.faults.skew_clock(-7_000)
    await trio.sleep(30.5)
    assert nonces.skew_state is SkewState.BLOCK and nonces.offset_ms == -7_000
    sim.faults.skew_clock(0)
    await trio.sleep(30)
    assert nonces.skew_state is SkewState.OK
    assert measured_at == [0.0, 30.0, 60.0]


async def test_a_failed_sync_keeps_the_last_offset_and_tries_again(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    wall = FakeWall()
    answers: list[Any] = [{"time": START_MS + 3_000}, RuntimeError("connection reset"), {"time": START_MS}]

    async def info(request: Mapping[str, Any]) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    nonces = NonceManager(wall)
    request = {"type": "clearinghouseState", "user": "0x" + "1" * 40}
    await nursery.start(
        lambda task_status: run_clock_sync(
            nonces, info, request, wall, interval_s=10, task_status=task_status
        )
    )
    assert nonces.offset_ms == 3_000
    await trio.sleep(10.5)
    assert nonces.offset_ms == 3_000 and nonces.skew_state is SkewState.WARN
    await trio.sleep(10)
    assert nonces.offset_ms == 0 and nonces.skew_state is SkewState.OK
    assert not answers
