"""`hip3 replay` against a recording made by a live trading run of the same bot on the in-memory simulator.

"Same trades": the replay's fills equal the live run's as (coin, side, size, price), in order. That is exact
here because the replay engine's book is the recorded top of book: the bot's IOC takes liquidity at the best
level, and every bbo frame the live bot received after its own fill (the depleted book) is in the recording
and is replayed at the same virtual instant. A live fill that swept beyond the best level could not be
reproduced (the recording holds only the top of book); the replay would fill less, at the best price.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
import trio
import trio.testing

from hip3.persist.market_recording import read_recording
from hip3.replay.run import ReplayResult, run_replay
from hip3.replay.source import read_recordings
from hip3.sim.scenario_file import parse_scenario
from tests.test_observation import SCENARIO
from tests.test_operations import enter_on_a_jump, journal_rows, start_bot, start_sim, trading_config
from tests.test_trading import TSLA, exchange_size, until

FILLS = "SELECT coin, side, size, px FROM fills ORDER BY wall_ms, fill_id"


def _write(path: Path, lines: list[dict[str, object]]) -> None:
    path.write_bytes(gzip.compress(b"".join(orjson.dumps(line) + b"\n" for line in lines)))


def test_recordings_are_read_in_time_order_across_files_and_restarts(tmp_path: Path) -> None:
    bbo = '{"channel":"bbo","data":{"coin":"xyz:TSLA"}}'
    _write(tmp_path / "market-2026-01-02.jsonl.gz", [{"t": 5.0, "w": 90_000, "frame": bbo}])
    _write(
        tmp_path / "market-2026-01-01.jsonl.gz",
        [
            {"t": 100.0, "w": 10_000, "frame": bbo},
            {"t": 101.5, "w": 11_500, "frame": bbo},
            {"t": 2.0, "w": 60_000, "frame": bbo},  # a restart: Trio time began again
        ],
    )
    frames = list(
        read_recordings([tmp_path / "market-2026-01-02.jsonl.gz", tmp_path / "market-2026-01-01.jsonl.gz"])
    )
    assert [f.frame.w for f in frames] == [10_000, 11_500, 60_000, 90_000]
    assert [f.offset_s for f in frames] == [0.0, 1.5, 50.0, 53.0]
    assert [f.frame.w for f in read_recordings([tmp_path])] == [10_000, 11_500, 60_000, 90_000]


async def _live_run(data_dir: Path) -> list[tuple[str, str, str, str]]:
    async with trio.open_nursery() as nursery:
        sim = await start_sim(nursery)
        await start_bot(nursery, trading_config(data_dir), sim)  # record_market_data defaults to true
        await enter_on_a_jump(sim)
        await until(lambda: exchange_size(sim) == 0)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    return journal_rows(data_dir / "journal.sqlite3", FILLS)


async def _replay(recorded: Path, out: Path, *, latency_ms: float, start_at: float | None) -> ReplayResult:
    return await run_replay(
        [recorded / "market"],
        trading_config(recorded),
        scenario=parse_scenario(SCENARIO, source="test"),
        data_dir=out,
        latency_ms=latency_ms,
        start_at=start_at,
    )


@pytest.mark.deadline(600)
async def test_a_replay_reproduces_the_live_runs_trades(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    live_dir = tmp_path / "live"
    live_fills = await _live_run(live_dir)
    assert [(coin, side) for coin, side, _, _ in live_fills] == [(TSLA, "buy"), (TSLA, "sell")]
    frames = [f for path in sorted((live_dir / "market").glob("*.jsonl.gz")) for f in read_recording(path)]
    assert frames
    # the replay runs in a fresh stretch of virtual time, aligned so the first frame plays at the same offset
    # from the bot's start as it was received live
    begun = trio.current_time()
    result = await _replay(live_dir, tmp_path / "replay", latency_ms=0, start_at=begun + frames[0].t)
    replay_fills = journal_rows(result.journal_path, FILLS)
    assert replay_fills == live_fills
    assert result.report.total.trades == 1


@pytest.mark.deadline(600)
async def test_latency_delays_the_replayed_fills(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    live_dir = tmp_path / "live"
    await _live_run(live_dir)
    first_t = next(read_recording(sorted((live_dir / "market").glob("*.jsonl.gz"))[0])).t
    times = {}
    for latency in (0, 250):
        begun = trio.current_time()
        result = await _replay(
            live_dir, tmp_path / f"replay-{latency}", latency_ms=latency, start_at=begun + first_t
        )
        rows = journal_rows(result.journal_path, "SELECT wall_ms FROM fills ORDER BY wall_ms")
        assert rows
        times[latency] = rows[0][0]
    assert times[250] - times[0] >= 250
