"""Market data as a WebSocket client sees it: the oracle's 3 s cadence and the dislocation after a jump.

Everything runs on MockClock; the frames' arrival times are asserted exactly.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
import trio.testing

from hip3.sim.harness import WALL_START_MS, run_memory_sim
from hip3.sim.market_process import MarketProcess, OracleUpdate
from hip3.sim.scenario_file import default_scenario
from tests.sim_integration import (
    BPS,
    CATCH_UP_STEPS,
    ORACLE_INTERVAL_MS,
    QUIET_CATCH_UP_MS,
    QUIET_LAG_MS,
    QUIET_START_PX,
    TSLA,
    SimClient,
    ack,
    at_ms,
    maker_top,
    nearest_cent,
    on_channel,
    quiet_scenario,
    top_of,
    until_ms,
    walk_references,
)

ONE_PERCENT = Decimal("0.01")
CADENCE_RUN_MS = 57_000  # the last update before the 60 s idle close of this silent client
FORCED_AT_UPDATE = 6  # the 6th oracle update (18 s) is a forced +250 bps jump, which the cap clamps to 1 %
FORCED_BPS = 250.0


def _reference_oracle_path(updates: int) -> list[Decimal]:
    """TSLA's oracle after each of the first `updates` updates, from a market process run on its own."""
    process = MarketProcess(default_scenario())
    process.start()
    path = []
    for update in range(1, updates + 1):
        if update == FORCED_AT_UPDATE:
            process.force_jump(TSLA, FORCED_BPS)
        moves = process.advance(update * ORACLE_INTERVAL_MS)
        path.append(next(u.oracle_px for u in moves if isinstance(u, OracleUpdate) and u.coin == TSLA))
    return path


@pytest.mark.deadline(90)
async def test_oracle_updates_reach_the_client_every_3_s_and_move_at_most_1_percent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    updates = CADENCE_RUN_MS // ORACLE_INTERVAL_MS
    async with trio.open_nursery() as nursery:
        sim = await nursery.start(run_memory_sim, default_scenario())
        start = trio.current_time()
        initial_oracle = sim.process.oracle(TSLA)
        client = await SimClient.connect(sim, nursery)
        subscription = {"type": "activeAssetCtx", "coin": TSLA}
        await client.subscribe(subscription)
        assert (await client.receive()).message == ack(subscription)
        frames = await client.receive_until(until_ms(start, (FORCED_AT_UPDATE - 1) * ORACLE_INTERVAL_MS))
        sim.process.force_jump(TSLA, FORCED_BPS)
        frames += await client.receive_until(until_ms(start, CADENCE_RUN_MS))
        nursery.cancel_scope.cancel()

    # AssetCtxChanged is emitted on every oracle update, changed or not: one frame every 3.000 s exactly.
    assert {frame.channel for frame in frames} == {"activeAssetCtx"}
    assert [frame.at for frame in frames] == [
        at_ms(start, k * ORACLE_INTERVAL_MS) for k in range(1, updates + 1)
    ]
    assert [frame.at - start for frame in frames] == [3.0 * k for k in range(1, updates + 1)]
    oracles = [Decimal(frame.data["ctx"]["oraclePx"]) for frame in frames]
    assert oracles == _reference_oracle_path(updates)

    # The frames whose oracle price changed are on the same 3 s grid; each move is within the 1 % cap.
    steps = list(zip([initial_oracle, *oracles[:-1]], oracles, strict=True))  # (before, after) per update
    changes = [
        (frame.at - start, after)
        for frame, (before, after) in zip(frames, steps, strict=True)
        if after != before
    ]
    assert len(changes) > updates // 2  # a 5 bps move is ~20 ticks: most updates change the price
    assert all((elapsed / 3.0).is_integer() for elapsed, _ in changes)
    moves = [(after - before) / before for before, after in steps]
    assert max(abs(move) for move in moves) <= ONE_PERCENT
    assert Decimal("0.0099") < moves[FORCED_AT_UPDATE - 1] <= ONE_PERCENT  # +250 bps asked, capped at 1 %
    marks = [Decimal(frame.data["ctx"]["markPx"]) for frame in frames]
    assert all(
        abs(mark - before) <= before * ONE_PERCENT for mark, before in zip(marks[1:], marks[:-1], strict=True)
    )


def _dislocation_bps(oracle: Decimal, bid: Decimal, ask: Decimal) -> Decimal:
    """How far the book is through the oracle: (oracle − ask) for buys, (bid − oracle) for sells, in bps."""
    return max(oracle - ask, bid - oracle) / oracle * BPS


@pytest.mark.parametrize("jump_bps", [80.0, -80.0], ids=["up", "down"])
async def test_a_jump_opens_a_dislocation_that_decays_as_the_makers_catch_up(
    autojump_clock: trio.testing.MockClock, jump_bps: float
) -> None:
    jump_ms = ORACLE_INTERVAL_MS
    async with trio.open_nursery() as nursery:
        sim = await nursery.start(run_memory_sim, quiet_scenario())
        start = trio.current_time()
        client = await SimClient.connect(sim, nursery)
        await client.subscribe({"type": "bbo", "coin": TSLA}, {"type": "activeAssetCtx", "coin": TSLA})
        sim.process.force_jump(TSLA, jump_bps)
        frames = await client.receive_until(until_ms(start, 3 * ORACLE_INTERVAL_MS))
        nursery.cancel_scope.cancel()

    jumped = nearest_cent(QUIET_START_PX * (1 + Decimal(str(jump_bps)) / BPS))
    assert jumped == (Decimal("433.99") if jump_bps > 0 else Decimal("427.11"))

    # The oracle jumps at the next update (3.000 s) and, in this quiet scenario, stays there.
    ctx_frames = on_channel(frames, "activeAssetCtx")
    assert [(frame.at, frame.data["ctx"]["oraclePx"]) for frame in ctx_frames] == [
        (at_ms(start, k * ORACLE_INTERVAL_MS), str(jumped)) for k in (1, 2, 3)
    ]

    # The makers' book changes only when their quotes walk: 250 ms steps after the 1 s lag.
    initial_top = maker_top(QUIET_START_PX)
    changes = []
    top = initial_top
    for frame in on_channel(frames, "bbo"):
        assert frame.data["time"] == WALL_START_MS + round((frame.at - start) * 1000)
        if top_of(frame) != top:
            top = top_of(frame)
            changes.append((frame.at, top))
    step_ms = QUIET_CATCH_UP_MS // CATCH_UP_STEPS
    assert changes == [
        (at_ms(start, jump_ms + QUIET_LAG_MS + step * step_ms), maker_top(reference))
        for step, reference in enumerate(walk_references(QUIET_START_PX, jumped), start=1)
    ]

    # At the jump the book is stale: the ask under the oracle (up) or the bid over it (down).
    stale_bid, stale_ask = initial_top
    at_jump = _dislocation_bps(jumped, stale_bid, stale_ask)
    expected = (jumped - stale_ask if jump_bps > 0 else stale_bid - jumped) / jumped * BPS
    assert at_jump == expected
    assert at_jump > 50

    # It decays at each step and is gone once the walk ends at t_jump + lag + catch-up.
    decay = [at_jump] + [_dislocation_bps(jumped, bid, ask) for _, (bid, ask) in changes]
    assert decay == sorted(decay, reverse=True)
    assert len(set(decay)) == len(decay)
    assert decay[-2] > 0
    end_at, (end_bid, end_ask) = changes[-1]
    assert end_at == at_ms(start, jump_ms + QUIET_LAG_MS + QUIET_CATCH_UP_MS)
    assert end_bid <= jumped <= end_ask


async def test_bbo_and_mids_frames_come_only_when_they_change(autojump_clock: trio.testing.MockClock) -> None:
    bbo = {"type": "bbo", "coin": TSLA}
    mids = {"type": "allMids", "dex": "xyz"}
    async with trio.open_nursery() as nursery:
        sim = await nursery.start(run_memory_sim, quiet_scenario())
        start = trio.current_time()
        client = await SimClient.connect(sim, nursery)
        await client.subscribe(bbo, mids)
        frames = await client.receive_until(until_ms(start, 3 * ORACLE_INTERVAL_MS))
        nursery.cancel_scope.cancel()
    # The quiet oracle never moves and the makers never re-quote: acks and the mids snapshot, then nothing.
    assert [(frame.at, frame.message) for frame in frames] == [
        (start, ack(bbo)),
        (start, ack(mids)),
        (start, {"channel": "allMids", "data": {"mids": {TSLA: str(QUIET_START_PX)}}}),
    ]
