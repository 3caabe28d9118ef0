"""DailyJsonl: batches on size and on time, rotation at UTC midnight, backpressure, shutdown (A-001)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
import trio.testing

from hip3.core.clock import trio_wall_clock
from hip3.persist.jsonl import DailyJsonl, run_inline

MARCH_1_MS = int(dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp() * 1000)
DAY_MS = 86_400_000


def on_disk(path: Path) -> list[dict[str, Any]]:
    """What a fresh reader sees now."""
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def writer(directory: Path, **options: Any) -> DailyJsonl:
    options.setdefault("wall_ms", trio_wall_clock(MARCH_1_MS + 1000))
    options.setdefault("run_blocking", run_inline)
    return DailyJsonl(directory, "signals", **options)


async def wait_for(condition: Callable[[], bool], step_s: float = 0.001) -> None:
    while not condition():  # noqa: ASYNC110 - the writer offers no event for "this much is on disk"
        await trio.sleep(step_s)


async def test_a001_a_full_batch_is_on_disk_while_running_and_everything_after_a_clean_stop(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    jsonl = writer(tmp_path, buffer_size=10, flush_interval_s=3600.0)
    path = jsonl.path_for("2026-03-01")
    async with trio.open_nursery() as nursery:
        await nursery.start(jsonl.run)
        for n in range(13):
            assert jsonl.record({"n": n})
        await trio.testing.wait_all_tasks_blocked()
        assert [row["n"] for row in on_disk(path)] == list(range(10))
        await trio.sleep(30.0)  # nothing else is flushed before the interval or a full batch
        assert len(on_disk(path)) == 10
        nursery.cancel_scope.cancel()
    assert [row["n"] for row in on_disk(path)] == list(range(13))
    assert (jsonl.stats.queued, jsonl.stats.written, jsonl.stats.batches) == (13, 13, 2)


async def test_a001_with_the_worker_thread_on_the_real_clock(tmp_path: Path) -> None:
    # Real clock on purpose: under MockClock the clock autojumps while a worker thread writes.
    jsonl = DailyJsonl(
        tmp_path, "signals", wall_ms=lambda: MARCH_1_MS, buffer_size=10, flush_interval_s=3600.0
    )
    path = jsonl.path_for("2026-03-01")
    async with trio.open_nursery() as nursery:
        await nursery.start(jsonl.run)
        for n in range(13):
            await jsonl.record_wait({"n": n})
        with trio.fail_after(10):
            await wait_for(lambda: len(on_disk(path)) >= 10)
        assert [row["n"] for row in on_disk(path)] == list(range(10))
        nursery.cancel_scope.cancel()
    assert [row["n"] for row in on_disk(path)] == list(range(13))


async def test_a_batch_is_flushed_exactly_flush_interval_after_its_first_record(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    jsonl = writer(tmp_path, buffer_size=100, flush_interval_s=1.0)
    path = jsonl.path_for("2026-03-01")
    async with trio.open_nursery() as nursery:
        await nursery.start(jsonl.run)
        start = trio.current_time()
        jsonl.record({"n": 0})
        await trio.sleep_until(start + 0.5)
        jsonl.record({"n": 1})
        await trio.sleep_until(start + 0.999)
        assert on_disk(path) == [] and jsonl.stats.batches == 0
        await wait_for(lambda: jsonl.stats.batches == 1)
        assert jsonl.stats.last_flush_at == start + 1.0
        assert [row["n"] for row in on_disk(path)] == [0, 1]
        nursery.cancel_scope.cancel()


async def test_files_rotate_at_midnight_utc_by_each_records_wall_time(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    jsonl = writer(tmp_path, wall_ms=trio_wall_clock(MARCH_1_MS + DAY_MS - 600), flush_interval_s=10.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(jsonl.run)
        jsonl.record({"n": "before"})
        await trio.sleep(0.599)
        jsonl.record({"n": "last ms of the day"})
        await trio.sleep(0.001)
        jsonl.record({"n": "midnight"})
        nursery.cancel_scope.cancel()
    assert jsonl.stats.batches == 1  # one batch, two files
    assert [row["n"] for row in on_disk(tmp_path / "signals-2026-03-01.jsonl")] == [
        "before",
        "last ms of the day",
    ]
    assert [row["n"] for row in on_disk(tmp_path / "signals-2026-03-02.jsonl")] == ["midnight"]


async def test_an_explicit_wall_time_chooses_the_file(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    jsonl = writer(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(jsonl.run)
        jsonl.record({"n": 1}, wall_ms=MARCH_1_MS - 1)
        nursery.cancel_scope.cancel()
    assert on_disk(tmp_path / "signals-2026-02-28.jsonl") == [{"n": 1}]


async def test_a_full_queue_refuses_record_and_makes_record_wait_wait_without_losing_anything(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    jsonl = writer(tmp_path, buffer_size=1, queue_size=2)
    path = jsonl.path_for("2026-03-01")
    assert jsonl.record({"n": 0}) and jsonl.record({"n": 1})
    assert not jsonl.record({"n": "refused"})
    assert jsonl.stats.refused_full == 1

    async def produce() -> None:
        for n in range(2, 7):
            assert await jsonl.record_wait({"n": n})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce)
        await trio.testing.wait_all_tasks_blocked()
        assert jsonl.stats.producer_waits == 1 and jsonl.stats.queued == 2  # waiting: no writer yet
        await nursery.start(jsonl.run)
        await wait_for(lambda: jsonl.stats.written == 7)
        nursery.cancel_scope.cancel()
    assert [row["n"] for row in on_disk(path)] == list(range(7))
    assert jsonl.stats.producer_waits >= 1


async def test_records_offered_after_the_writer_stopped_are_refused_and_counted(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    jsonl = writer(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(jsonl.run)
        nursery.cancel_scope.cancel()
    assert not jsonl.record({"n": 1})
    assert not await jsonl.record_wait({"n": 2})
    assert jsonl.stats.refused_stopped == 2


async def test_a_write_cut_short_by_cancellation_is_not_written_twice(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    calls = 0

    async def slow_after_the_first_write(write: Callable[[], None]) -> None:
        nonlocal calls
        calls += 1
        write()
        await trio.sleep(
            10.0 if calls == 1 else 0.0
        )  # a worker thread still busy when the writer is cancelled

    jsonl = writer(tmp_path, buffer_size=3, run_blocking=slow_after_the_first_write)
    async with trio.open_nursery() as nursery:
        await nursery.start(jsonl.run)
        for n in range(5):
            jsonl.record({"n": n})
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    assert [row["n"] for row in on_disk(jsonl.path_for("2026-03-01"))] == list(range(5))


async def test_the_shutdown_write_is_bounded(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    async def stuck_disk(write: Callable[[], None]) -> None:
        await trio.sleep_forever()

    jsonl = writer(tmp_path, run_blocking=stuck_disk, shutdown_timeout_s=5.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(jsonl.run)
        jsonl.record({"n": 1})
        jsonl.record({"n": 2})
        stop_at = trio.current_time()
        nursery.cancel_scope.cancel()
    assert trio.current_time() == stop_at + 5.0
    assert jsonl.stats.abandoned_at_shutdown == 2


async def test_decimals_are_written_exactly_and_unknown_types_fail_in_the_producer(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    jsonl = writer(tmp_path)
    with pytest.raises(TypeError):
        jsonl.record({"what": object()})
    async with trio.open_nursery() as nursery:
        await nursery.start(jsonl.run)
        jsonl.record({"px": Decimal("430.10"), "text": 'é\u2028"\n'})
        nursery.cancel_scope.cancel()
    assert on_disk(jsonl.path_for("2026-03-01")) == [{"px": "430.10", "text": 'é\u2028"\n'}]


async def test_appends_to_an_existing_file(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    for n in range(2):
        jsonl = writer(tmp_path / "new" / "dir")
        async with trio.open_nursery() as nursery:
            await nursery.start(jsonl.run)
            jsonl.record({"run": n})
            nursery.cancel_scope.cancel()
    assert on_disk(tmp_path / "new" / "dir" / "signals-2026-03-01.jsonl") == [{"run": 0}, {"run": 1}]


def test_rejects_nonsense_bounds(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        DailyJsonl(tmp_path, "x", wall_ms=lambda: 0, buffer_size=0)
