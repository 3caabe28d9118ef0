"""How fast the bot acts: tick-to-order and post round trips, kept as recent samples for percentiles.

Tick-to-order runs from the receipt of the last market frame (book or asset context) the detector saw
before it fired, to the signed entry handed to the transport. Both ends are Trio times. Floats: statistics.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping

from hip3.execution.sender import PostTiming
from hip3.market.state import MarketState
from hip3.position.model import PendingOrder
from hip3.strategy.signal import Signal

SAMPLES_KEPT = 4096
ENTRIES_REMEMBERED = 1024  # queued entries waiting for their post; the oldest are forgotten first


class Samples:
    """The most recent `SAMPLES_KEPT` values of one latency."""

    def __init__(self, kept: int = SAMPLES_KEPT) -> None:
        self._values: deque[float] = deque(maxlen=kept)
        self.count = 0  # every sample ever added

    def add(self, value: float) -> None:
        self._values.append(value)
        self.count += 1

    def percentile(self, fraction: float) -> float | None:
        """Nearest-rank percentile of the kept samples; None without samples."""
        return _nearest_rank(sorted(self._values), fraction)

    def percentiles(self) -> dict[str, float | int | None]:
        ordered = sorted(self._values)  # once for both
        return {"p50": _nearest_rank(ordered, 0.50), "p99": _nearest_rank(ordered, 0.99), "count": self.count}


class OrderLatency:
    """Listens to the entry pipeline (entries queued) and the sender (posts made)."""

    def __init__(
        self,
        states: Mapping[str, MarketState],
        *,
        on_tick_to_order_us: Callable[[float], None] | None = None,
        on_post_rtt_ms: Callable[[float], None] | None = None,
    ) -> None:
        self._states = states
        self._tick_at: OrderedDict[str, float] = OrderedDict()
        self._on_tick_to_order_us = on_tick_to_order_us
        self._on_post_rtt_ms = on_post_rtt_ms
        self.tick_to_order_us = Samples()
        self.post_rtt_ms = Samples()

    def on_entry_queued(self, order: PendingOrder, _signal: Signal) -> None:
        tick = _last_frame_at(self._states.get(order.coin))
        if tick is None:
            return
        self._tick_at[order.cloid.value] = tick
        if len(self._tick_at) > ENTRIES_REMEMBERED:
            self._tick_at.popitem(last=False)

    def on_post(self, timing: PostTiming) -> None:
        rtt_ms = (timing.answered_at - timing.sent_at) * 1000
        self.post_rtt_ms.add(rtt_ms)
        if self._on_post_rtt_ms is not None:
            self._on_post_rtt_ms(rtt_ms)
        for cloid in timing.cloids:
            tick = self._tick_at.pop(cloid, None)
            if tick is not None:
                self._add_tick_to_order((timing.sent_at - tick) * 1e6)

    def _add_tick_to_order(self, micros: float) -> None:
        self.tick_to_order_us.add(micros)
        if self._on_tick_to_order_us is not None:
            self._on_tick_to_order_us(micros)


def _nearest_rank(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def _last_frame_at(state: MarketState | None) -> float | None:
    if state is None:
        return None
    times = [t for t in (state.bbo_received_at, state.ctx_received_at) if t is not None]
    return max(times) if times else None
