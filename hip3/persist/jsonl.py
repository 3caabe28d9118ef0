"""Daily JSON Lines files, written in batches by one writer task so that producers never touch the disk.

Producers encode a record into one line at once (so a record is a snapshot, and a record that cannot be
encoded fails in the producer's call, not later in the writer) and queue it on a bounded memory channel:

- `record(obj)` is synchronous and never waits: it returns False when the queue is full (the caller still
  holds the record). Use it where waiting is not allowed; `stats.refused_full` counts those refusals.
- `await record_wait(obj)` never drops: it queues without a checkpoint when there is room and otherwise waits
  for the writer (counted in `stats.producer_waits`). The signal path uses it; the writer must keep up, so a
  wait means the disk is too slow and is worth an alert, but no record is lost (predecessor A-001).

The writer task (`run`) takes a batch and writes it with one worker-thread call, one line per record, to
`{directory}/{prefix}-{YYYY-MM-DD}.jsonl` (`.jsonl.gz` when compressed, one gzip member per batch) by the
UTC date of each record's wall-clock time, so files rotate at midnight UTC. A batch is written when it holds
`buffer_size` records or `flush_interval_s` (Trio time) after its first record was queued, and on shutdown:
when the writer is cancelled it writes everything batched and queued in one shielded, bounded call. Files are
opened in append mode and closed after each batch, so a crash loses at most the batch being gathered.

Under MockClock, pass `run_blocking=run_inline`: the clock autojumps while a worker thread writes, which
would otherwise make virtual time depend on the disk (and could hit the shutdown bound).
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import threading
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import orjson
import structlog
import trio

from hip3.core.clock import WallClock

log = structlog.get_logger(__name__)

BlockingRunner = Callable[[Callable[[], None]], Awaitable[None]]

_MS_PER_DAY = 86_400_000
_GZIP_LEVEL = 6


async def run_in_worker_thread(write: Callable[[], None]) -> None:
    """The default: write on a worker thread. On cancellation the thread finishes its batch on its own."""
    await trio.to_thread.run_sync(write, abandon_on_cancel=True)


async def run_inline(write: Callable[[], None]) -> None:
    """Write on the Trio thread (tests under MockClock, where virtual time must not depend on the disk)."""
    write()
    await trio.lowlevel.checkpoint()


def _encode_extra(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON Lines")


def encode_line(obj: dict[str, Any]) -> bytes:
    """One JSON object on one line (newline included); Decimals become strings, exact."""
    return orjson.dumps(obj, default=_encode_extra, option=orjson.OPT_APPEND_NEWLINE)


class UtcDays:
    """Maps wall-clock ms to the UTC date, remembering the current day's bounds (called once per record)."""

    def __init__(self) -> None:
        self._start_ms = 0
        self._end_ms = 0
        self._name = ""

    def name_of(self, wall_ms: int) -> str:
        if not self._start_ms <= wall_ms < self._end_ms:
            self._start_ms = wall_ms - wall_ms % _MS_PER_DAY
            self._end_ms = self._start_ms + _MS_PER_DAY
            self._name = dt.datetime.fromtimestamp(self._start_ms / 1000, tz=dt.UTC).date().isoformat()
        return self._name


@attrs.frozen(slots=True)
class QueuedLine:
    day: str  # UTC date of the record's wall time: the file it goes to
    data: bytes  # one encoded line, newline included
    queued_at: float  # trio time


@attrs.define(slots=True)
class WriterStats:
    queued: int = 0
    written: int = 0  # lines whose batch write returned
    batches: int = 0
    last_flush_at: float | None = None  # trio time the last batch write started
    producer_waits: int = 0  # record_wait calls that found the queue full and waited
    refused_full: int = 0  # record calls that found the queue full (the caller keeps the record)
    refused_stopped: int = 0  # records offered after the writer stopped
    abandoned_at_shutdown: int = 0  # lines whose final write outlived the shutdown bound


def append_batch(groups: list[tuple[Path, list[bytes]]], *, compressed: bool, lock: threading.Lock) -> None:
    """Append each file's lines (a gzip member per file when compressed). Runs on a worker thread."""
    with lock:
        for path, lines in groups:
            data = b"".join(lines)
            if compressed:
                data = gzip.compress(data, compresslevel=_GZIP_LEVEL, mtime=0)
            with path.open("ab") as file:
                file.write(data)


class DailyJsonl:
    def __init__(
        self,
        directory: Path,
        prefix: str,
        *,
        wall_ms: WallClock,
        buffer_size: int = 100,
        flush_interval_s: float = 1.0,
        queue_size: int = 10_000,
        compressed: bool = False,
        shutdown_timeout_s: float = 5.0,
        run_blocking: BlockingRunner = run_in_worker_thread,
    ) -> None:
        if buffer_size < 1 or queue_size < 1 or flush_interval_s <= 0:
            raise ValueError("buffer_size and queue_size must be ≥ 1 and flush_interval_s > 0")
        self._directory = directory
        self._prefix = prefix
        self._suffix = ".jsonl.gz" if compressed else ".jsonl"
        self._compressed = compressed
        self._wall_ms = wall_ms
        self._buffer_size = buffer_size
        self._flush_interval_s = flush_interval_s
        self._shutdown_timeout_s = shutdown_timeout_s
        self._run_blocking = run_blocking
        self._send, self._receive = trio.open_memory_channel[QueuedLine](queue_size)
        self._days = UtcDays()
        self._batch: list[QueuedLine] = []  # taken off the queue, not yet handed to a write
        self._file_lock = threading.Lock()  # an abandoned write and the shutdown write never interleave
        self._full_logged = False
        self.stats = WriterStats()
        directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, day: str) -> Path:
        return self._directory / f"{self._prefix}-{day}{self._suffix}"

    # producers

    def record(self, obj: dict[str, Any], *, wall_ms: int | None = None) -> bool:
        """Queue without waiting; False when the queue is full or the writer has stopped (nothing queued)."""
        line = self._line(obj, wall_ms)
        try:
            self._send.send_nowait(line)
        except trio.WouldBlock:
            self._note_full()
            return False
        except trio.BrokenResourceError:
            self._note_stopped()
            return False
        self._note_queued()
        return True

    async def record_wait(self, obj: dict[str, Any], *, wall_ms: int | None = None) -> bool:
        """Queue, waiting for room if the queue is full; no checkpoint when there is room.

        False only when the writer has stopped.
        """
        line = self._line(obj, wall_ms)
        try:
            try:
                self._send.send_nowait(line)
            except trio.WouldBlock:
                self.stats.producer_waits += 1
                await self._send.send(line)
        except trio.BrokenResourceError:
            self._note_stopped()
            return False
        self._note_queued()
        return True

    def _line(self, obj: dict[str, Any], wall_ms: int | None) -> QueuedLine:
        when_ms = self._wall_ms() if wall_ms is None else wall_ms
        return QueuedLine(self._days.name_of(when_ms), encode_line(obj), trio.current_time())

    def _note_queued(self) -> None:
        self.stats.queued += 1
        self._full_logged = False

    def _note_full(self) -> None:
        self.stats.refused_full += 1
        if not self._full_logged:  # once per episode, not once per record
            self._full_logged = True
            log.warning("record queue full, writer behind", prefix=self._prefix)

    def _note_stopped(self) -> None:
        self.stats.refused_stopped += 1
        log.warning("record offered after the writer stopped", prefix=self._prefix)

    # the writer

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                await self._gather_batch()
                await self._write_batch()
        finally:
            await self._write_everything_left()
            self._receive.close()

    async def _gather_batch(self) -> None:
        """Fill `_batch` until it holds buffer_size lines or its first line has waited flush_interval_s."""
        self._batch.append(await self._receive.receive())
        deadline = self._batch[0].queued_at + self._flush_interval_s
        self._take_queued()
        with trio.move_on_at(deadline):
            while len(self._batch) < self._buffer_size:
                self._batch.append(await self._receive.receive())
                self._take_queued()

    def _take_queued(self) -> None:
        while len(self._batch) < self._buffer_size:
            try:
                self._batch.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                return

    async def _write_batch(self) -> None:
        lines, self._batch = self._batch, []  # handed over: a write cut short by cancellation still completes
        self.stats.last_flush_at = trio.current_time()
        groups = self._group_by_file(lines)
        write = functools.partial(append_batch, groups, compressed=self._compressed, lock=self._file_lock)
        await self._run_blocking(write)
        self.stats.batches += 1
        self.stats.written += len(lines)

    def _group_by_file(self, lines: list[QueuedLine]) -> list[tuple[Path, list[bytes]]]:
        by_day: dict[str, list[bytes]] = {}
        for line in lines:
            by_day.setdefault(line.day, []).append(line.data)
        return [(self.path_for(day), data) for day, data in by_day.items()]

    async def _write_everything_left(self) -> None:
        """Shutdown (A-001): the gathered batch and the whole queue in one write, shielded and bounded."""
        while True:
            try:
                self._batch.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                break
        if not self._batch:
            return
        left = len(self._batch)
        with trio.move_on_after(self._shutdown_timeout_s, shield=True) as scope:
            await self._write_batch()
        if scope.cancelled_caught:
            self.stats.abandoned_at_shutdown += left
            log.error("final write outlived the shutdown bound", prefix=self._prefix, lines=left)
        else:
            log.info("records written at shutdown", prefix=self._prefix, lines=left)
