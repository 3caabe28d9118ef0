"""Watched values: waiting for a predicate, and for the next change."""

from __future__ import annotations

import trio
import trio.testing

from hip3.core.watched import Watched


async def test_wait_for_returns_at_once_when_the_value_already_holds() -> None:
    watched = Watched(3)
    assert await watched.wait_for(lambda v: v > 2) == 3


async def test_wait_for_wakes_on_the_change_that_satisfies_it(autojump_clock: trio.testing.MockClock) -> None:
    watched = Watched("down")
    seen: list[tuple[float, str]] = []

    async def waiter() -> None:
        value = await watched.wait_for(lambda v: v == "live")
        seen.append((trio.current_time(), value))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(1)
        watched.set("connecting")
        await trio.sleep(1)
        watched.set("live")
    assert seen == [(2.0, "live")]


async def test_setting_the_same_value_wakes_nobody(autojump_clock: trio.testing.MockClock) -> None:
    watched = Watched(1)
    woke: list[int] = []

    async def waiter() -> None:
        woke.append(await watched.wait_change())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(1)
        watched.set(1)
        await trio.sleep(1)
        assert woke == []
        watched.set(2)
    assert woke == [2]
