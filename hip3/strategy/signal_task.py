"""The signal task: for each market whose data changed, the risk gates, then the detector; signals go onward.

It sees the latest state of each dirty market (design: feed → signal is a dirty set, not a queue), so signals
are never computed on stale data and the cost per frame does not grow with the number of markets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import trio

from hip3.market.feed import MarketFeed
from hip3.market.state import MarketState
from hip3.risk.market_gates import MarketRiskGates, RiskBlocked
from hip3.strategy.detector import Detector
from hip3.strategy.signal import Signal

SignalListener = Callable[[Signal], Awaitable[None]]  # awaited: an entry may wait for the tracker's inbox
SignalBookkeeper = Callable[[Signal], None]  # records a signal: the recorder, the journal, the dashboard
MarketListener = Callable[[str], None]  # told of every market whose data changed (exits: mark regression)


def evaluate_market(
    state: MarketState, risk: MarketRiskGates, detector: Detector, now: float
) -> Signal | None:
    verdict = risk.check(state, now)
    if isinstance(verdict, RiskBlocked):
        detector.observe(state, now)  # keep the oracle history whole while the market is blocked
        return None
    return detector.evaluate(state, now, size_factor=verdict.size_factor)


async def run_signal_task(
    feed: MarketFeed,
    risk: MarketRiskGates,
    detector: Detector,
    listeners: Sequence[SignalListener],
    *,
    bookkeepers: Sequence[SignalBookkeeper] = (),
    market_listeners: Sequence[MarketListener] = (),
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """`listeners` act on a signal (the entry pipeline), `bookkeepers` record it, once its order is out."""
    task_status.started()
    while True:
        for coin in await feed.dirty.take():
            for market_listener in market_listeners:
                market_listener(coin)
            signal = evaluate_market(feed.states[coin], risk, detector, trio.current_time())
            if signal is not None:
                await hand_on(signal, listeners, bookkeepers)


async def hand_on(
    signal: Signal, listeners: Sequence[SignalListener], bookkeepers: Sequence[SignalBookkeeper]
) -> None:
    """The listeners, then the bookkeepers after the task a listener woke has run (the sender: it signs and
    hands the order over in one step), so that recording a signal never delays its order.

    Trio runs the tasks made runnable during one step in the next batch, in random order: one checkpoint
    puts this task in the batch with the sender, the second puts it after the sender's step.
    """
    for listener in listeners:
        await listener(signal)
    if bookkeepers:
        await trio.lowlevel.checkpoint()
        await trio.lowlevel.checkpoint()
        for bookkeeper in bookkeepers:
            bookkeeper(signal)
