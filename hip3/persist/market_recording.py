"""The raw market recording: bbo and activeAssetCtx frames as received, and book seeds, for `hip3 replay`.

The WebSocket hands every raw text frame to `on_raw_frame` with the Trio time it was received, before parsing;
the recorder keeps the bbo and activeAssetCtx frames, original text unchanged, adds the wall-clock ms, queues
one line `{"t": trio time, "w": wall ms, "frame": text}` for a daily gzip JSON Lines file
`{prefix}-{YYYY-MM-DD}.jsonl.gz` (UTC). A replay runs the same parser on the same text, in the same order, at
the same relative times. `on_raw_frame` is synchronous and never waits: if the queue is full (the disk is far
behind) the frame is not recorded, `stats.refused_full` counts it and a warning is logged once per episode.

Line kinds (a line holds exactly one of `frame` and `seed`; readers skip a line with neither):
- `{"t", "w", "frame": text}`: a WebSocket frame as received (above).
- `{"t", "w", "seed": answer}`: a book seed, the /info l2Book answer (`{"coin", "time", "levels"}`, both
  sides at full depth, as decoded) that hip3.market.book_seed fetched when a connection went LIVE; `t` is when
  the answer arrived (`record_seed`). The only depth the recording holds: bbo frames carry the top of book.
`read_recording` yields the frames only (recordings made before seeds were recorded read as they always
did); `read_entries` yields both kinds, in file order.

Batching, rotation and shutdown are `DailyJsonl`'s: each batch is its own gzip member, so a crash loses at
most the batch being gathered and the file stays readable. Memory is bounded by the queue (`queue_size`
lines) plus one batch. `read_recording` streams a file member by member and skips a truncated last member.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson
import structlog
import trio

from hip3.core.clock import WallClock
from hip3.persist.jsonl import BlockingRunner, DailyJsonl, WriterStats, run_in_worker_thread

log = structlog.get_logger(__name__)

_GZIP_WBITS = 31  # zlib: expect a gzip header and trailer
_READ_CHUNK = 1 << 20
RECORDED_CHANNELS = frozenset({"bbo", "activeAssetCtx"})
# the first "channel" key: the top-level one, as the exchange (and the simulator) write it first
_CHANNEL = re.compile(r'"channel"\s*:\s*"([^"]*)"')


class RecordingCorrupt(ValueError):
    """A recording with damage before its last member (a truncated last member is expected after a crash)."""


@attrs.frozen(slots=True)
class RecordedFrame:
    t: float  # trio time the frame was received
    w: int  # wall-clock ms when it was recorded
    text: str  # the frame exactly as received


@attrs.frozen(slots=True)
class RecordedSeed:
    t: float  # trio time the l2Book answer arrived
    w: int  # wall-clock ms when it was recorded
    book: dict[str, Any]  # the /info l2Book answer: {"coin", "time", "levels": [bids, asks]}


RecordedEntry = RecordedFrame | RecordedSeed


class MarketRecorder:
    def __init__(
        self,
        directory: Path,
        *,
        wall_ms: WallClock,
        prefix: str = "market",
        buffer_size: int = 100,
        flush_interval_s: float = 1.0,
        queue_size: int = 10_000,
        run_blocking: BlockingRunner = run_in_worker_thread,
    ) -> None:
        self._wall_ms = wall_ms
        self._writer = DailyJsonl(
            directory,
            prefix,
            wall_ms=wall_ms,
            buffer_size=buffer_size,
            flush_interval_s=flush_interval_s,
            queue_size=queue_size,
            compressed=True,
            run_blocking=run_blocking,
        )

    @property
    def stats(self) -> WriterStats:
        return self._writer.stats

    def path_for(self, day: str) -> Path:
        return self._writer.path_for(day)

    def on_raw_frame(self, text: str, received_at: float) -> None:
        """The WebSocket's raw listener: record the frame if it is a bbo or activeAssetCtx frame."""
        if is_recorded_channel(text):
            self.record_frame(text, received_at)

    def record_frame(self, text: str, received_at: float) -> bool:
        """Queue a frame without waiting; False when the queue is full (see `DailyJsonl.record`)."""
        return self._record("frame", text, received_at)

    async def record_frame_wait(self, text: str, received_at: float) -> bool:
        """Queue a frame, waiting for room if the queue is full (see `DailyJsonl.record_wait`)."""
        wall = self._wall_ms()
        return await self._writer.record_wait({"t": received_at, "w": wall, "frame": text}, wall_ms=wall)

    def record_seed(self, answer: Any, received_at: float) -> bool:
        """Queue a book seed (an /info l2Book answer) without waiting; False if it is not one, or refused."""
        if not isinstance(answer, dict) or not isinstance(answer.get("coin"), str):
            return False
        return self._record("seed", answer, received_at)

    def _record(self, kind: str, value: Any, received_at: float) -> bool:
        wall = self._wall_ms()
        return self._writer.record({"t": received_at, "w": wall, kind: value}, wall_ms=wall)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self._writer.run(task_status=task_status)


def is_recorded_channel(text: str) -> bool:
    match = _CHANNEL.search(text)
    return match is not None and match.group(1) in RECORDED_CHANNELS


def read_recording(path: Path, *, chunk_size: int = _READ_CHUNK) -> Iterator[RecordedFrame]:
    """The frames of one recording file in order (seed lines left out); lazily, one gzip member at a time."""
    for entry in read_entries(path, chunk_size=chunk_size):
        if isinstance(entry, RecordedFrame):
            yield entry


def read_entries(path: Path, *, chunk_size: int = _READ_CHUNK) -> Iterator[RecordedEntry]:
    """The frames and seeds of one recording file in order; lazily, one gzip member in memory at a time."""
    for member in gzip_members(path, chunk_size):
        for line in member.split(b"\n"):
            if line and (entry := _parse_line(line)) is not None:
                yield entry


def _parse_line(line: bytes) -> RecordedEntry | None:
    entry = orjson.loads(line)
    t, w = float(entry["t"]), int(entry["w"])
    if "frame" in entry:
        return RecordedFrame(t=t, w=w, text=entry["frame"])
    seed = entry.get("seed")
    return RecordedSeed(t=t, w=w, book=seed) if isinstance(seed, dict) else None


def gzip_members(path: Path, chunk_size: int = _READ_CHUNK) -> Iterator[bytes]:
    """The decompressed content of each complete gzip member; a truncated last member is skipped (logged)."""
    decompressor = zlib.decompressobj(_GZIP_WBITS)
    member: list[bytes] = []
    started = False
    with path.open("rb") as file:
        while chunk := file.read(chunk_size):
            while chunk:
                started = True
                member.append(_decompress(decompressor, chunk, path))
                if not decompressor.eof:
                    break
                yield b"".join(member)
                member, chunk, started = [], decompressor.unused_data, False
                decompressor = zlib.decompressobj(_GZIP_WBITS)
    if started:
        log.warning("recording ends in a truncated gzip member, skipped", path=str(path))


def _decompress(decompressor: zlib._Decompress, data: bytes, path: Path) -> bytes:
    try:
        return decompressor.decompress(data)
    except zlib.error as exc:
        raise RecordingCorrupt(f"{path}: damaged gzip data: {exc}") from exc
