"""Wall-clock milliseconds: the one place the bot and the simulator read the time of day.

Control flow runs on `trio.current_time()`; wall-clock ms are only for what the exchange needs (nonces,
`expiresAfter`, `scheduleCancel` times, timestamps). Components take a `WallClock` so tests can pin it or tie
it to Trio's (mock) clock with `trio_wall_clock`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import trio

WallClock = Callable[[], int]


def system_wall_ms() -> int:
    return time.time_ns() // 1_000_000


def trio_wall_clock(start_ms: int) -> WallClock:
    """Wall-clock ms that start at `start_ms` now and advance with Trio's clock (virtual under MockClock)."""
    origin = trio.current_time()

    def wall_ms() -> int:
        return start_ms + round((trio.current_time() - origin) * 1000)

    return wall_ms
