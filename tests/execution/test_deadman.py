"""The dead-man switch against the in-memory exchange, under MockClock, with exact virtual times.

The switch posts through a small real `post_action`: sign with the funded test key and a fresh nonce, POST
/exchange over the simulator's in-memory HTTP transport. The simulator's own state (the armed time, the
day's trigger count, the orders it cancelled) is what the tests check. The sim's driver fires due scheduled
cancels at whole seconds, so a switch armed at a whole second fires at that very instant.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from hip3.core.order import Side, Tif
from hip3.execution.deadman import DeadmanState, DeadmanSwitch
from hip3.execution.nonce import NonceManager
from hip3.net.http import HttpClient
from hip3.protocol.actions import OrderRequest, exchange_request, order_action
from hip3.protocol.signing import sign_l1_action
from hip3.sim.harness import BASE_URL, WALL_START_MS, MemorySim, run_memory_sim
from hip3.sim.scenario import Scenario
from tests.sim_integration import FUNDING, KEY, TRADER, TSLA_ASSET, quiet_scenario

ARM_AHEAD_S = 30.0
REFRESH_MARGIN_S = 10.0
CLEAR = {"type": "scheduleCancel"}


@attrs.define
class SimPoster:
    """Signs and posts actions to the simulator; records (virtual time, action); can be cut off."""

    sim: MemorySim
    http: HttpClient
    start: float
    nonces: NonceManager
    posted: list[tuple[float, dict[str, Any]]] = attrs.Factory(list)
    cut_off: bool = False

    async def post_action(self, action: dict[str, Any]) -> Any:
        if self.cut_off:
            raise ConnectionError("no route to the exchange")
        self.posted.append((trio.current_time() - self.start, action))
        nonce = self.nonces.next()
        signature = sign_l1_action(KEY, action, nonce=nonce, is_mainnet=False)
        return await self.http.exchange(exchange_request(action, dict(signature), nonce=nonce))

    def scheduled_cancel_at(self) -> int | None:
        user = self.sim.exchange.core.user(TRADER)
        assert user is not None
        return user.schedule_cancel_at

    def triggers_counted_by_exchange(self) -> int:
        user = self.sim.exchange.core.user(TRADER)
        assert user is not None
        return user.schedule_cancel_triggers


@asynccontextmanager
async def simulator(
    scenario: Scenario | None = None, *, wall_start_ms: int = WALL_START_MS
) -> AsyncIterator[tuple[trio.Nursery, SimPoster]]:
    async with trio.open_nursery() as nursery:
        run = functools.partial(
            run_memory_sim, scenario or quiet_scenario(), fund=FUNDING, wall_start_ms=wall_start_ms
        )
        sim: MemorySim = await nursery.start(run)
        async with HttpClient(BASE_URL, transport=sim.http_transport) as http:
            yield nursery, SimPoster(sim, http, trio.current_time(), NonceManager(sim.exchange.now_ms))
        nursery.cancel_scope.cancel()


def switch(poster: SimPoster, orders_can_rest: Callable[[], bool], *, daily_cap: int = 10) -> DeadmanSwitch:
    return DeadmanSwitch(
        poster.post_action,
        wall_ms=poster.sim.exchange.now_ms,
        arm_ahead_s=ARM_AHEAD_S,
        refresh_margin_s=REFRESH_MARGIN_S,
        daily_cap=daily_cap,
        orders_can_rest=orders_can_rest,
    )


def arm(at_ms: int) -> dict[str, Any]:
    return {"type": "scheduleCancel", "time": at_ms}


async def sleep_to(poster: SimPoster, seconds: float) -> None:
    await trio.sleep_until(poster.start + seconds)


async def place_resting_bids(poster: SimPoster, count: int) -> list[int]:
    orders = [
        OrderRequest(TSLA_ASSET, Side.BUY, Decimal(400 + i), Decimal("0.1"), Tif.GTC) for i in range(count)
    ]
    body = await poster.post_action(order_action(orders))
    return [status["resting"]["oid"] for status in body["response"]["data"]["statuses"]]


async def open_orders(poster: SimPoster) -> list[dict[str, Any]]:
    answer = await poster.http.info({"type": "openOrders", "user": TRADER, "dex": "xyz"})
    assert isinstance(answer, list)
    return answer


async def test_arms_ahead_and_refreshes_at_the_exact_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with simulator() as (nursery, poster):
        deadman = switch(poster, lambda: True)
        await nursery.start(deadman.run)
        await sleep_to(poster, 0.5)
        armed_first = poster.scheduled_cancel_at()
        await sleep_to(poster, 45.5)
        armed_last = poster.scheduled_cancel_at()
        state = deadman.state.value

    assert armed_first == WALL_START_MS + 30_000
    assert poster.posted == [
        (0.0, arm(WALL_START_MS + 30_000)),
        (20.0, arm(WALL_START_MS + 50_000)),  # 10 s left: refreshed
        (40.0, arm(WALL_START_MS + 70_000)),
    ]
    assert armed_last == WALL_START_MS + 70_000
    assert state == DeadmanState(WALL_START_MS + 70_000, triggers_today=0, daily_cap=10)


async def test_clear_on_exit_disarms_and_ends_run(autojump_clock: trio.testing.MockClock) -> None:
    async with simulator() as (nursery, poster):
        deadman = switch(poster, lambda: True)
        run_ended = trio.Event()

        async def run_then_note() -> None:
            await deadman.run()
            run_ended.set()

        nursery.start_soon(run_then_note)
        await sleep_to(poster, 5.0)
        assert poster.scheduled_cancel_at() == WALL_START_MS + 30_000
        await deadman.clear()
        await run_ended.wait()
        ended_at = trio.current_time() - poster.start
        await sleep_to(poster, 50.0)

    assert poster.posted == [(0.0, arm(WALL_START_MS + 30_000)), (5.0, CLEAR)]
    assert ended_at == 5.0
    assert poster.scheduled_cancel_at() is None
    assert poster.triggers_counted_by_exchange() == 0
    assert deadman.state.value.armed_until_ms is None


async def test_idle_switch_is_cleared_at_its_refresh_point_instead_of_left_to_fire(
    autojump_clock: trio.testing.MockClock,
) -> None:
    can_rest = False
    async with simulator() as (nursery, poster):
        deadman = switch(poster, lambda: can_rest)
        await nursery.start(deadman.run)
        await sleep_to(poster, 3.5)
        can_rest = True
        deadman.poke()
        await sleep_to(poster, 4.0)
        can_rest = False
        await sleep_to(poster, 50.0)

    assert poster.posted == [
        (0.0, CLEAR),  # a previous process may have left it armed
        (3.5, arm(WALL_START_MS + 33_500)),  # armed at once when poked
        (23.5, CLEAR),  # nothing can rest at the refresh point: cleared, so no trigger is spent
    ]
    assert poster.scheduled_cancel_at() is None
    assert poster.triggers_counted_by_exchange() == 0
    assert deadman.state.value == DeadmanState(None, triggers_today=0, daily_cap=10)


async def test_unrefreshed_switch_fires_and_the_exchange_cancels_our_resting_orders(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with simulator() as (nursery, poster):
        oids = await place_resting_bids(poster, 2)
        deadman = switch(poster, lambda: True)
        await nursery.start(deadman.run)
        await sleep_to(poster, 1.0)
        resting_before = await open_orders(poster)
        poster.cut_off = True  # refreshes from 20 s on cannot reach the exchange
        await sleep_to(poster, 29.999)
        resting_just_before = await open_orders(poster)
        await sleep_to(poster, 30.0005)
        resting_after = await open_orders(poster)
        statuses = [
            await poster.http.info({"type": "orderStatus", "user": TRADER, "oid": oid}) for oid in oids
        ]
        state = deadman.state.value

    assert [order["oid"] for order in resting_before] == sorted(oids, reverse=True)
    assert len(resting_just_before) == 2
    assert resting_after == []
    assert [status["order"]["status"] for status in statuses] == ["scheduledCancel"] * 2
    assert poster.triggers_counted_by_exchange() == 1
    assert state.triggers_today == 1
    assert state.armed_until_ms is None
    assert state.last_error is not None and "no route" in state.last_error


@pytest.mark.deadline(120)
async def test_daily_cap_stops_arming_is_reported_and_resets_at_utc_midnight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    scenario = attrs.evolve(quiet_scenario(), schedule_cancel_daily_cap=1)
    midnight_at_s = 60
    day_start_ms = WALL_START_MS - midnight_at_s * 1000
    async with simulator(scenario, wall_start_ms=day_start_ms) as (nursery, poster):
        deadman = switch(poster, lambda: True, daily_cap=1)
        await nursery.start(deadman.run)
        await sleep_to(poster, 1.0)
        poster.cut_off = True
        await sleep_to(poster, 30.5)  # fired at 30 s: the day's one trigger is spent
        poster.cut_off = False
        await sleep_to(poster, 40.5)
        capped_state = deadman.state.value

        restarted = switch(poster, lambda: True, daily_cap=10)  # a new process, not knowing the count
        await nursery.start(restarted.run)
        await sleep_to(poster, 41.0)
        refused_state = restarted.state.value
        await sleep_to(poster, 61.0)

    assert capped_state == DeadmanState(None, triggers_today=1, daily_cap=1, last_error=None)
    assert capped_state.capped
    # After the fire: a clear (failed refreshes leave it unsure whether the switch is armed), then the
    # restarted switch's refused arm and its clear, and nothing more until the new UTC day.
    assert [action for at, action in poster.posted if 30 < at < midnight_at_s] == [
        CLEAR,
        arm(day_start_ms + 70_500),
        CLEAR,
    ]
    assert refused_state.triggers_today == 10  # a cap refusal: reported as this switch's cap reached
    assert refused_state.capped
    assert refused_state.last_error == "Too many scheduled cancel triggers today, the limit is 1 per day."
    assert [(at, action) for at, action in poster.posted if at >= midnight_at_s] == [
        (60.0, arm(WALL_START_MS + 30_000)),
        (60.5, arm(WALL_START_MS + 30_500)),
    ]
    assert poster.scheduled_cancel_at() == WALL_START_MS + 30_500


def test_timing_is_checked_against_the_exchange_minimum() -> None:
    def make(arm_ahead_s: float, refresh_margin_s: float, daily_cap: int = 10) -> DeadmanSwitch:
        async def never(action: dict[str, Any]) -> Any:
            raise AssertionError

        return DeadmanSwitch(
            never,
            wall_ms=lambda: 0,
            arm_ahead_s=arm_ahead_s,
            refresh_margin_s=refresh_margin_s,
            daily_cap=daily_cap,
            orders_can_rest=lambda: True,
        )

    with pytest.raises(ValueError, match="5 s minimum"):
        make(5.0, 1.0)
    with pytest.raises(ValueError, match="refresh_margin_s"):
        make(30.0, 30.0)
    with pytest.raises(ValueError, match="daily_cap"):
        make(30.0, 10.0, daily_cap=0)
