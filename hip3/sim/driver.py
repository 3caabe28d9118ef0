"""Runs the market process on Trio's clock and feeds its updates to the exchange.

Time is `trio.current_time()` only: under `trio.testing.MockClock` the oracle updates and maker re-quotes land
at exact virtual times (0, 3.000 s, 6.000 s, … after start). Between market events the driver still wakes at
least once a second to call `exchange.on_time()`, so the engine's timers (scheduled cancels) fire on time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol, runtime_checkable

import trio

from hip3.sim.market_process import MarketProcess, MarketUpdate, OracleUpdate

ON_TIME_PERIOD_MS = 1000


@runtime_checkable
class ExchangeHooks(Protocol):
    """What the driver needs from the engine."""

    def set_oracle(self, coin: str, oracle_px: Decimal) -> None: ...

    def set_maker_quotes(
        self, coin: str, bids: Sequence[tuple[Decimal, Decimal]], asks: Sequence[tuple[Decimal, Decimal]]
    ) -> None: ...

    def on_time(self) -> None: ...


def apply_updates(exchange: ExchangeHooks, updates: Sequence[MarketUpdate]) -> None:
    for update in updates:
        if isinstance(update, OracleUpdate):
            exchange.set_oracle(update.coin, update.oracle_px)
        else:
            exchange.set_maker_quotes(update.coin, update.bids, update.asks)


async def run_market(
    process: MarketProcess,
    exchange: ExchangeHooks,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Apply the process's initial state, report started, then feed every update at its due time, forever."""
    start_time = trio.current_time()
    apply_updates(exchange, process.start())
    exchange.on_time()
    task_status.started()
    next_tick_ms = ON_TIME_PERIOD_MS
    while True:
        wake_ms = min(process.next_event_ms(), next_tick_ms)
        await trio.sleep_until(start_time + wake_ms / 1000)
        # Float seconds may land a hair before the due millisecond; never advance less than what woke us.
        elapsed_ms = max(wake_ms, math.floor((trio.current_time() - start_time) * 1000))
        apply_updates(exchange, process.advance(elapsed_ms))
        exchange.on_time()
        while next_tick_ms <= elapsed_ms:
            next_tick_ms += ON_TIME_PERIOD_MS
