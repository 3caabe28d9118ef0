"""MarketRecorder and read_recording: frames byte for byte, gzip members per batch, truncation, bounds."""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from hip3.core.clock import trio_wall_clock
from hip3.persist.jsonl import run_inline
from hip3.persist.market_recording import (
    MarketRecorder,
    RecordedFrame,
    RecordingCorrupt,
    gzip_members,
    read_recording,
)

MARCH_1_MS = int(dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp() * 1000)
START_MS = MARCH_1_MS + 3_600_000

FRAMES = [
    '{"channel":"bbo","data":{"coin":"xyz:TSLA","time":1772326800000,'
    '"bbo":[{"px":"429.5","sz":"1.2","n":3},{"px":"430.1","sz":"0.4","n":1}]}}',
    '{ "channel" : "activeAssetCtx", "data": {"coin": "xyz:TSLA", "ctx": {"oraclePx": "430.0",'
    ' "markPx": "429.9", "funding": "0.0000125"}} }\n',
    '{"channel":"bbo","data":{"coin":"xyz:ÉTÉ","note":"quote \\" backslash \\\\ \u2028 tab\t"}}',
    "not even json, but it is what arrived",
]


def recorder(directory: Path, **options: Any) -> MarketRecorder:
    options.setdefault("run_blocking", run_inline)
    return MarketRecorder(directory, wall_ms=trio_wall_clock(START_MS), **options)


async def record_all(rec: MarketRecorder, frames: list[str], step_s: float = 0.125) -> list[float]:
    """Record each frame `step_s` apart, received 1 ms before, then stop; the Trio times of recording."""
    recorded_at = []
    async with trio.open_nursery() as nursery:
        await nursery.start(rec.run)
        for text in frames:
            await trio.sleep(step_s)
            recorded_at.append(trio.current_time())
            assert rec.record_frame(text, received_at=recorded_at[-1] - 0.001)
        nursery.cancel_scope.cancel()
    return recorded_at


async def test_frames_round_trip_byte_for_byte_with_their_times(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    start = trio.current_time()
    rec = recorder(tmp_path, buffer_size=3)
    recorded_at = await record_all(rec, FRAMES)
    path = rec.path_for("2026-03-01")
    assert path.name == "market-2026-03-01.jsonl.gz"
    assert list(read_recording(path)) == [
        RecordedFrame(t=at - 0.001, w=START_MS + round((at - start) * 1000), text=text)
        for at, text in zip(recorded_at, FRAMES, strict=True)
    ]
    assert [frame.text.encode() for frame in read_recording(path)] == [text.encode() for text in FRAMES]


async def test_each_batch_is_its_own_gzip_member_readable_while_recording(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    rec = recorder(tmp_path, buffer_size=2, flush_interval_s=3600.0)
    path = rec.path_for("2026-03-01")
    async with trio.open_nursery() as nursery:
        await nursery.start(rec.run)
        for n, text in enumerate(FRAMES[:3]):
            rec.record_frame(text, float(n))
        await trio.testing.wait_all_tasks_blocked()
        assert [frame.text for frame in read_recording(path)] == FRAMES[:2]  # a fresh reader, mid-run
        nursery.cancel_scope.cancel()
    assert len(list(gzip_members(path))) == 2
    assert gzip.decompress(path.read_bytes()).decode().count("\n") == 3  # the standard reader agrees


async def test_a_truncated_last_member_is_skipped(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    rec = recorder(tmp_path, buffer_size=2)
    await record_all(rec, FRAMES)
    path = rec.path_for("2026-03-01")
    whole = path.read_bytes()
    first_member_size = len(whole) - len(gzip_tail(whole))
    for keep in (len(whole) - 1, len(whole) - 9, first_member_size + 3, first_member_size + 20):
        path.write_bytes(whole[:keep])
        assert [frame.text for frame in read_recording(path)] == FRAMES[:2], keep


def gzip_tail(data: bytes) -> bytes:
    """What follows the first gzip member."""
    decompressor = zlib.decompressobj(31)
    decompressor.decompress(data)
    return decompressor.unused_data


async def test_reading_in_small_chunks_gives_the_same_frames(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    rec = recorder(tmp_path, buffer_size=1)
    await record_all(rec, FRAMES * 5)
    path = rec.path_for("2026-03-01")
    assert len(list(gzip_members(path))) == 20
    assert [frame.text for frame in read_recording(path, chunk_size=7)] == FRAMES * 5


async def test_damage_before_the_last_member_is_an_error(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    rec = recorder(tmp_path, buffer_size=1)
    await record_all(rec, FRAMES[:2])
    path = rec.path_for("2026-03-01")
    path.write_bytes(path.read_bytes() + b"garbage that is not gzip")
    with pytest.raises(RecordingCorrupt):
        list(read_recording(path))


async def test_memory_is_bounded_by_the_queue(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    rec = recorder(tmp_path, queue_size=5)  # no writer running: the disk is "stuck"
    accepted = [rec.record_frame(FRAMES[0], float(n)) for n in range(8)]
    assert accepted == [True] * 5 + [False] * 3
    assert (rec.stats.queued, rec.stats.refused_full) == (5, 3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(rec.record_frame_wait, FRAMES[1], 9.0)
        await trio.testing.wait_all_tasks_blocked()
        assert rec.stats.producer_waits == 1
        await nursery.start(rec.run)
        await trio.sleep(2)
        nursery.cancel_scope.cancel()
    assert [frame.t for frame in read_recording(rec.path_for("2026-03-01"))] == [0.0, 1.0, 2.0, 3.0, 4.0, 9.0]


async def test_the_recording_rotates_at_midnight_utc(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    rec = MarketRecorder(tmp_path, wall_ms=trio_wall_clock(MARCH_1_MS - 150), run_blocking=run_inline)
    await record_all(rec, FRAMES[:2], step_s=0.1)
    assert [frame.text for frame in read_recording(tmp_path / "market-2026-02-28.jsonl.gz")] == FRAMES[:1]
    assert [frame.text for frame in read_recording(tmp_path / "market-2026-03-01.jsonl.gz")] == FRAMES[1:2]


async def test_the_raw_listener_keeps_only_bbo_and_asset_context_frames(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    rec = recorder(tmp_path)
    others = [
        '{"channel":"pong"}',
        '{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"bbo"}}}',
        '{"channel":"orderUpdates","data":[]}',
        '{"channel":"l2Book","data":{"coin":"xyz:TSLA"}}',
        "Websocket connection established.",
    ]
    async with trio.open_nursery() as nursery:
        await nursery.start(rec.run)
        for n, text in enumerate([*others, *FRAMES[:2]]):
            rec.on_raw_frame(text, float(n))
        nursery.cancel_scope.cancel()
    assert [frame.text for frame in read_recording(rec.path_for("2026-03-01"))] == FRAMES[:2]
