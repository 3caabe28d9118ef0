"""How one market's oracle has been moving: a bounded history of its changes on Trio's clock.

The book updates ~100 times a second while the oracle changes every few seconds, so comparing the oracle with
its value one evaluation ago says "unchanged" almost always (predecessor e8eeeb9). Direction and velocity are
therefore measured over a time window of recorded *changes*:

- change over a window: from the price in force when the window opened (the last change at or before its
  start; the oldest one kept if the history starts inside the window) to the latest price; 0 when nothing
  changed inside the window;
- direction: the sign of that change;
- consecutive moves: the run of moves in one direction ending at the latest change, counting only changes
  after a given time (an exit asks "since entry", predecessor 5b6eee3). A move is a change of at least
  `move_min_bps` from the previous recorded price; smaller changes are noise: they neither count nor break
  a run.

Pure: times are passed in (`trio.current_time()` in the app). Memory is bounded by `max_changes`.
"""

from __future__ import annotations

import bisect
import enum
import math
from collections import deque
from decimal import Decimal

import attrs

from hip3.core.market import BPS

DEFAULT_MAX_CHANGES = 256  # ~13 minutes of changes at the 3 s oracle cadence


class OracleDirection(enum.Enum):
    UP = "up"
    DOWN = "down"
    FLAT = "flat"


@attrs.frozen(slots=True)
class OracleChange:
    at: float  # Trio time the change was seen
    price: Decimal


class OracleHistory:
    """The recent oracle changes of one market."""

    def __init__(self, *, move_min_bps: float, max_changes: int = DEFAULT_MAX_CHANGES) -> None:
        if not math.isfinite(move_min_bps) or move_min_bps < 0:
            raise ValueError(f"move_min_bps must be a finite number ≥ 0, got {move_min_bps}")
        if max_changes < 2:
            raise ValueError(f"max_changes must be ≥ 2, got {max_changes}")
        self.move_min_bps = move_min_bps
        self._changes: deque[OracleChange] = deque(maxlen=max_changes)

    def __len__(self) -> int:
        return len(self._changes)

    @property
    def latest(self) -> OracleChange | None:
        return self._changes[-1] if self._changes else None

    def record(self, at: float, price: Decimal) -> bool:
        """Note the oracle at `at`; True if it is a change (the first price seen counts as one)."""
        if not price.is_finite() or price <= 0:
            raise ValueError(f"oracle price must be positive, got {price}")
        latest = self.latest
        if latest is not None:
            if at < latest.at:
                raise ValueError(f"oracle change at {at} is older than the latest one at {latest.at}")
            if price == latest.price:
                return False
        self._changes.append(OracleChange(at, price))
        return True

    def change_bps(self, now: float, window_s: float) -> float:
        """The oracle's change in bps over the `window_s` seconds before `now` (signed)."""
        start = now - window_s
        latest = self.latest
        if latest is None or latest.at <= start:
            return 0.0
        reference = self._price_at(start)
        return float((latest.price - reference) / reference) * BPS

    def direction(self, now: float, window_s: float) -> OracleDirection:
        return direction_of(self.change_bps(now, window_s))

    def consecutive_moves(self, direction: OracleDirection, *, since: float | None = None) -> int:
        """Moves in `direction` in a row, up to the latest change, among changes seen after `since`."""
        if direction is OracleDirection.FLAT:
            return 0
        count = 0
        newer: OracleChange | None = None
        for change in reversed(self._changes):
            if newer is not None:
                move = direction_of(self._move_bps(change.price, newer.price))
                if move is not OracleDirection.FLAT:
                    if move is not direction:
                        break
                    count += 1
            if since is not None and change.at <= since:
                break
            newer = change
        return count

    def _move_bps(self, older: Decimal, newer: Decimal) -> float:
        """The change from `older` to `newer` in bps, or 0 if it is too small to count as a move."""
        change = float((newer - older) / older) * BPS
        return change if abs(change) >= self.move_min_bps else 0.0

    def _price_at(self, at: float) -> Decimal:
        """The price in force at `at`: the last change at or before it, else the oldest one kept."""
        # times never decrease (`record`), so a binary search: a full window can hold the whole history
        index = bisect.bisect_right(self._changes, at, key=_change_time) - 1
        return self._changes[max(index, 0)].price


def _change_time(change: OracleChange) -> float:
    return change.at


def direction_of(change_bps: float) -> OracleDirection:
    """UP, DOWN or FLAT by the sign of a change."""
    if change_bps > 0:
        return OracleDirection.UP
    if change_bps < 0:
        return OracleDirection.DOWN
    return OracleDirection.FLAT
