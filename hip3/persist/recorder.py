"""Signals and their followups: what each dislocation looked like later, to judge the detector honestly.

`on_signal` (synchronous: a listener of the signal task) queues the signal at once (its `to_record()` plus
the wall time) and schedules one followup per offset at `detected_at + offset` on Trio's clock. At each, the
followup records the taken side's price then
(the ask for a buy, the bid for a sell), the edge then in bps against the oracle then (positive while the
book still lags: oracle - ask for a buy, bid - oracle for a sell), and whether the dislocation had closed
(edge ≤ 0). Fields are null when the book side or the oracle is missing then.

One task (`run`) owns every followup timer: a heap of due times, bounded by `max_pending_followups`; it
queues followups with `record_wait`, so a slow disk delays them (their `lag_ms` shows it) but loses none. On
shutdown the pending followups are dropped, counted and logged; their signals are already queued for disk.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

import attrs
import structlog
import trio

from hip3.core.clock import WallClock
from hip3.core.market import BPS
from hip3.core.order import Side
from hip3.market.state import MarketState
from hip3.persist.jsonl import DailyJsonl

log = structlog.get_logger(__name__)


class RecordableSignal(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def coin(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def detected_at(self) -> float: ...  # trio time

    def to_record(self) -> dict[str, Any]: ...


@attrs.frozen(slots=True)
class DueFollowup:
    due_at: float  # trio time
    sequence: int
    signal_id: str
    coin: str
    side: Side
    offset_s: float


# The heap holds (due_at, sequence, followup): tuples of a float and an int compare at C speed, where an
# attrs comparison builds two tuples in Python for each of the heap's log n comparisons.
_HeapEntry = tuple[float, int, DueFollowup]


@attrs.frozen(slots=True)
class FollowupPrices:
    taken_px: Decimal | None  # ask for a buy, bid for a sell
    oracle_px: Decimal | None
    edge_bps: float | None
    closed: bool | None


@attrs.define(slots=True)
class RecorderStats:
    signals: int = 0
    signals_refused: int = 0  # the signal queue was full: not recorded, no followups
    followups_recorded: int = 0
    followups_refused_full: int = 0  # not scheduled: the heap was at max_pending_followups
    followups_dropped_at_shutdown: int = 0


def followup_prices(state: MarketState | None, side: Side) -> FollowupPrices:
    if state is None:
        return FollowupPrices(None, None, None, None)
    taken = state.ask_px if side.is_buy else state.bid_px
    oracle = state.oracle_px
    if taken is None or oracle is None or oracle <= 0:
        return FollowupPrices(taken, oracle, None, None)
    lag = oracle - taken if side.is_buy else taken - oracle
    return FollowupPrices(taken, oracle, float(lag / oracle) * BPS, lag <= 0)


class SignalRecorder:
    def __init__(
        self,
        jsonl_signals: DailyJsonl,
        jsonl_followups: DailyJsonl,
        states: Mapping[str, MarketState],
        *,
        offsets_s: Sequence[float] = (1.0, 3.0, 5.0),
        wall_ms: WallClock,
        max_pending_followups: int = 30_000,
    ) -> None:
        if not offsets_s or any(offset <= 0 for offset in offsets_s):
            raise ValueError(f"followup offsets must be positive, got {tuple(offsets_s)}")
        self._signals = jsonl_signals
        self._followups = jsonl_followups
        self._states = states
        self._offsets_s = tuple(offsets_s)
        self._wall_ms = wall_ms
        self._max_pending = max_pending_followups
        self._due: list[_HeapEntry] = []
        self._captured: deque[dict[str, Any]] = deque()  # captured, waiting for room in the followup queue
        self._sequence = itertools.count()
        self._earlier_due = trio.Event()  # set when a followup becomes the next one due
        self._full_logged = False
        self.stats = RecorderStats()

    @property
    def pending_followups(self) -> int:
        return len(self._due) + len(self._captured)

    def on_signal(self, signal: RecordableSignal) -> None:
        """Queue the signal for disk and schedule its followups; never waits (the signal path's listener).

        If the signal queue is full (the writer is far behind) the signal is not recorded and gets no
        followups; `stats.signals_refused` counts it and the writer logs once per episode.
        """
        wall = self._wall_ms()
        if not self._signals.record({**signal.to_record(), "recorded_wall_ms": wall}, wall_ms=wall):
            self.stats.signals_refused += 1
            return
        self.stats.signals += 1
        for offset_s in self._offsets_s:
            self._schedule(signal, offset_s)

    def _schedule(self, signal: RecordableSignal, offset_s: float) -> None:
        if len(self._due) >= self._max_pending:
            self.stats.followups_refused_full += 1
            if not self._full_logged:  # once per episode
                self._full_logged = True
                log.warning("followups not scheduled: too many pending", limit=self._max_pending)
            return
        self._full_logged = False
        due_at = signal.detected_at + offset_s
        followup = DueFollowup(due_at, next(self._sequence), signal.id, signal.coin, signal.side, offset_s)
        heapq.heappush(self._due, (due_at, followup.sequence, followup))
        if self._due[0][2] is followup:
            self._earlier_due.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            while True:
                await self._wait_for_next_due()
                self._captured.extend(self._capture_due())
                while self._captured:
                    record = self._captured[0]
                    if await self._followups.record_wait(record, wall_ms=record["wall_ms"]):
                        self.stats.followups_recorded += 1
                    self._captured.popleft()  # else the writer has stopped and counted it
        finally:
            self._drop_pending()

    async def _wait_for_next_due(self) -> None:
        while not self._due or self._due[0][0] > trio.current_time():
            next_due = self._due[0][0] if self._due else float("inf")
            with trio.move_on_at(next_due):
                await self._earlier_due.wait()
            self._earlier_due = trio.Event()

    def _capture_due(self) -> list[dict[str, Any]]:
        """Take every followup due now and read its market's state, all before any await."""
        now = trio.current_time()
        records = []
        while self._due and self._due[0][0] <= now:
            records.append(self._followup_record(heapq.heappop(self._due)[2], now))
        return records

    def _followup_record(self, followup: DueFollowup, now: float) -> dict[str, Any]:
        prices = followup_prices(self._states.get(followup.coin), followup.side)
        return {
            "signal_id": followup.signal_id,
            "coin": followup.coin,
            "side": followup.side.label,
            "offset_ms": round(followup.offset_s * 1000),
            "taken_px": prices.taken_px,
            "oracle_px": prices.oracle_px,
            "edge_bps": prices.edge_bps,
            "closed": prices.closed,
            "lag_ms": round((now - followup.due_at) * 1000, 3),  # how late the capture ran (0 unless busy)
            "wall_ms": self._wall_ms(),
        }

    def _drop_pending(self) -> None:
        dropped = len(self._due) + len(self._captured)
        self._due.clear()
        self._captured.clear()
        self.stats.followups_dropped_at_shutdown += dropped
        if dropped:
            log.info("pending followups dropped at shutdown", followups=dropped)
