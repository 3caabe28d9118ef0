"""The signal task's hand-on: the entry acts first, and the signal's bookkeeping runs only after the task the
entry woke (the sender) has taken its step, so recording a signal never delays its order."""

from __future__ import annotations

import trio
import trio.testing

from hip3.core.order import Side
from hip3.strategy.signal import Signal
from hip3.strategy.signal_task import hand_on
from tests.persist.test_journal import make_signal

ROUNDS = 200  # Trio runs a batch in random order: without the ordering, about half the rounds would fail


async def test_bookkeeping_runs_after_the_sender_the_entry_woke(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    lot = trio.lowlevel.ParkingLot()

    async def sender() -> None:  # parked like the sender's posting loops; one step from wake-up to signed
        while True:
            await lot.park()
            log.append("signed")

    async def entry(signal: Signal) -> None:
        log.append("queued")
        lot.unpark()

    def bookkeeper(signal: Signal) -> None:
        log.append("recorded")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sender)
        await trio.testing.wait_all_tasks_blocked()
        for i in range(ROUNDS):
            await hand_on(make_signal(f"s{i}", "xyz:TSLA", Side.BUY, 40.0), [entry], [bookkeeper])
            await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert log == ["queued", "signed", "recorded"] * ROUNDS


async def test_without_listeners_the_bookkeeping_still_runs(autojump_clock: trio.testing.MockClock) -> None:
    recorded: list[str] = []
    await hand_on(make_signal("s1", "xyz:TSLA", Side.SELL, 40.0), [], [lambda s: recorded.append(s.id)])
    assert recorded == ["s1"]
