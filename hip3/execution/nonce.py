"""Nonces for signed actions, and the offset between our wall clock and the exchange's.

Every nonce is `max(last + 1, now_ms + offset)`: strictly increasing even for many actions in one millisecond
(a bug class in other clients: duplicate nonces under bursts) and across a local clock that steps backwards.
The offset is measured against the exchange's own timestamps; a skew over the warning bound is reported, over
the blocking bound trading stops with a clear reason until a later measurement is back within bounds.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import structlog
import trio

from hip3.core.clock import WallClock

log = structlog.get_logger(__name__)


class SkewState(enum.Enum):
    UNMEASURED = "unmeasured"
    OK = "ok"
    WARN = "warn"
    BLOCK = "block"


@attrs.frozen
class SkewReading:
    offset_ms: int  # exchange clock minus ours
    round_trip_ms: int
    state: SkewState


class NonceManager:
    def __init__(self, wall_ms: WallClock, *, warn_ms: int = 2_000, block_ms: int = 5_000) -> None:
        if not 0 < warn_ms <= block_ms:
            raise ValueError(f"need 0 < warn_ms ≤ block_ms, got {warn_ms} and {block_ms}")
        self._wall_ms = wall_ms
        self._warn_ms = warn_ms
        self._block_ms = block_ms
        self._last = 0
        self._offset_ms = 0
        self._state = SkewState.UNMEASURED

    def next(self) -> int:
        nonce = max(self._last + 1, self._wall_ms() + self._offset_ms)
        self._last = nonce
        return nonce

    @property
    def offset_ms(self) -> int:
        return self._offset_ms

    @property
    def skew_state(self) -> SkewState:
        return self._state

    @property
    def blocked_reason(self) -> str | None:
        if self._state is not SkewState.BLOCK:
            return None
        return f"clock skew {self._offset_ms} ms against the exchange exceeds the {self._block_ms} ms bound"

    def observe(self, server_ms: int, sent_ms: int, received_ms: int) -> SkewReading:
        """Record the exchange's time from a response; our time is taken as the round trip's midpoint."""
        offset = server_ms - (sent_ms + received_ms) // 2
        state = self._state_for(offset)
        if state is not self._state:
            report = log.info if state is SkewState.OK else log.warning
            report("clock skew state changed", state=state.value, offset_ms=offset)
        self._offset_ms, self._state = offset, state
        return SkewReading(offset_ms=offset, round_trip_ms=received_ms - sent_ms, state=state)

    def _state_for(self, offset_ms: int) -> SkewState:
        if abs(offset_ms) > self._block_ms:
            return SkewState.BLOCK
        if abs(offset_ms) > self._warn_ms:
            return SkewState.WARN
        return SkewState.OK


InfoCall = Callable[[Mapping[str, Any]], Awaitable[Any]]


class ClockSyncError(Exception):
    """The exchange's answer carried no usable `time`."""


async def measure_offset(
    nonces: NonceManager, info: InfoCall, request: Mapping[str, Any], wall_ms: WallClock
) -> SkewReading:
    """Ask for something carrying the exchange's `time` (l2Book, clearinghouseState); record the offset."""
    sent = wall_ms()
    body = await info(request)
    received = wall_ms()
    server_ms = body.get("time") if isinstance(body, Mapping) else None
    if type(server_ms) is not int:
        raise ClockSyncError(f"{request.get('type')} answer has no integer `time`")
    return nonces.observe(server_ms, sent, received)


async def run_clock_sync(
    nonces: NonceManager,
    info: InfoCall,
    request: Mapping[str, Any],
    wall_ms: WallClock,
    *,
    interval_s: float,
    task_status: trio.TaskStatus[SkewReading | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Measure at start-up (reported through started()), then every `interval_s`; a failed measurement is
    logged and tried again at the next interval, keeping the last known offset."""
    reading = await _measure_logged(nonces, info, request, wall_ms)
    task_status.started(reading)
    next_at = trio.current_time()
    while True:
        next_at += interval_s
        await trio.sleep_until(next_at)
        await _measure_logged(nonces, info, request, wall_ms)


async def _measure_logged(
    nonces: NonceManager, info: InfoCall, request: Mapping[str, Any], wall_ms: WallClock
) -> SkewReading | None:
    try:
        return await measure_offset(nonces, info, request, wall_ms)
    except Exception as exc:  # any failure of one measurement: keep the last offset, try again later
        log.warning("clock sync failed", error=str(exc), request_type=request.get("type"))
        return None
