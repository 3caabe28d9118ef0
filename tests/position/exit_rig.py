"""A running bot slice for exit tests: the in-memory exchange, the tracker actor, scheduler, sender,
market feed and `Exits`, all under MockClock.

The market feed marks markets dirty and a pump task calls `Exits.on_market_update` for each, as the signal
task does. Each update the pump passes on is recorded with its time and the touches and oracle it saw,
so a test can name the exact update an exit fired on. Exit orders are recorded as the scheduler receives them.
The user stream (orderUpdates, userFills) is off unless asked for: the post response alone then ends an order,
which lets a test hold an exit in flight by delaying post responses.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from random import Random
from typing import Any

import attrs
import trio

from hip3.core.clock import WallClock, trio_wall_clock
from hip3.core.market import MarketSpec
from hip3.core.order import Cloid, Side, Tif
from hip3.execution.nonce import NonceManager
from hip3.execution.scheduler import Scheduler, SubmitResult
from hip3.execution.sender import RejectEvent, Sender
from hip3.market.feed import MarketFeed, run_feed
from hip3.market.state import MarketState
from hip3.net.http import HttpClient
from hip3.net.ws import WsConnection, WsSettings
from hip3.position.exits import Exits, ExitSettings
from hip3.position.flatten import FlattenGuard
from hip3.position.model import PendingOrder
from hip3.position.tracker import PositionTracker, TrackerHandle
from hip3.position.user_stream import run_user_stream
from hip3.sim.events import SimEvent, UserFilled
from hip3.sim.harness import BASE_URL, WALL_START_MS, MemorySim, run_memory_sim
from hip3.sim.scenario import Scenario, market_spec
from tests.sim_integration import FUNDING, KEY, TRADER, quiet_scenario

BTC, TSLA = "BTC", "xyz:TSLA"
_cloids = itertools.count(1)


@attrs.frozen
class OfferedOrder:
    at: float
    wall_ms: int
    order: PendingOrder
    result: SubmitResult


class RecordingScheduler(Scheduler):
    """The scheduler, noting every reduce-only order offered to it with its virtual time and the answer."""

    def __init__(self, wall_ms: WallClock) -> None:
        super().__init__()
        self._wall_ms = wall_ms
        self.reduce_only: list[OfferedOrder] = []

    def submit_reduce_only(self, order: PendingOrder) -> SubmitResult:
        result = super().submit_reduce_only(order)
        self.reduce_only.append(OfferedOrder(trio.current_time(), self._wall_ms(), order, result))
        return result


@attrs.frozen
class MarketUpdate:
    at: float
    wall_ms: int
    bid: Decimal | None
    ask: Decimal | None
    oracle: Decimal | None


def scenario_specs(scenario: Scenario) -> dict[str, MarketSpec]:
    return {
        spec.name: spec
        for dex_index, dex in enumerate(scenario.dexes)
        for meta_index, market in enumerate(dex.markets)
        for spec in [market_spec(market, dex.name, dex_index, meta_index)]
    }


@attrs.define
class ExitRig:
    sim: MemorySim
    tracker: TrackerHandle
    actor: PositionTracker
    scheduler: RecordingScheduler
    sender: Sender
    feed: MarketFeed
    specs: dict[str, MarketSpec]
    guard: FlattenGuard
    wall_ms: WallClock
    nursery: trio.Nursery
    rejects: list[RejectEvent]
    exits: Exits | None = None
    updates: dict[str, list[MarketUpdate]] = attrs.field(factory=dict)
    sim_fills: list[dict[str, Any]] = attrs.field(factory=list)

    def record_sim_fill(self, event: SimEvent) -> None:
        if isinstance(event, UserFilled) and event.user == TRADER:
            self.sim_fills.append(event.fill)

    @property
    def exit_orders(self) -> list[OfferedOrder]:
        return self.scheduler.reduce_only

    def state(self, coin: str) -> MarketState:
        return self.feed.states[coin]

    async def start_exits(self, settings: ExitSettings) -> Exits:
        exits = Exits(
            self.tracker,
            self.scheduler,
            self.feed.states,
            self.specs,
            self.guard,
            settings,
            wall_ms=self.wall_ms,
        )
        self.actor.fill_listeners.append(exits.on_fill)
        await self.nursery.start(exits.run)
        self.exits = exits
        return exits

    async def open(self, coin: str, side: Side, size: str, limit_px: str) -> None:
        """Take a position with an Ioc entry and wait until the tracker holds it."""
        spec = self.specs[coin]
        order = PendingOrder(
            cloid=Cloid.from_int(next(_cloids)),
            coin=coin,
            asset=spec.key.asset_id,
            side=side,
            size=Decimal(size),
            limit_px=Decimal(limit_px),
            tif=Tif.IOC,
            reduce_only=False,
            registered_at=trio.current_time(),
        )
        assert self.tracker.try_register_order(order)
        assert self.scheduler.submit_new(order) is SubmitResult.QUEUED
        await self.until(lambda: self.tracker.pending_by_cloid(order.cloid) is None)
        assert self.tracker.position(coin) is not None

    async def until(self, done: Callable[[], bool]) -> None:
        while not done():  # noqa: ASYNC110 - the tracker has no event for these conditions
            await trio.sleep(0.001)
        await self.tracker.settled()

    def filled_oids(self, coin: str) -> set[int]:
        """The oids of our orders the exchange filled on `coin`, as its fill events say."""
        return {int(fill["oid"]) for fill in self.sim_fills if fill["coin"] == coin}

    async def until_flat(self) -> None:
        await self.until(lambda: not self.tracker.positions and not self.guard.markets)

    def exchange_position(self, coin: str) -> Decimal:
        markets = self.sim.exchange.audit(TRADER)["markets"]
        assert isinstance(markets, dict)
        return Decimal(markets[coin]["position"]) if coin in markets else Decimal(0)

    async def pump_market_updates(self) -> None:
        """What the signal task does for exits: each dirty market's newest state to `on_market_update`."""
        while True:
            for coin in await self.feed.dirty.take():
                state = self.feed.states[coin]
                update = MarketUpdate(
                    trio.current_time(), self.wall_ms(), state.bid_px, state.ask_px, state.oracle_px
                )
                self.updates.setdefault(coin, []).append(update)
                if self.exits is not None:
                    self.exits.on_market_update(coin)


async def start_exit_rig(nursery: trio.Nursery, *, user_stream: bool = False) -> ExitRig:
    scenario = quiet_scenario()
    sim: MemorySim = await nursery.start(
        lambda task_status: run_memory_sim(scenario, fund=FUNDING, task_status=task_status)
    )
    wall_ms = trio_wall_clock(WALL_START_MS)
    actor = PositionTracker(wall_ms)
    tracker: TrackerHandle = await nursery.start(actor.run)
    ws = WsConnection(sim.ws_server.connect, WsSettings(reconnect_jitter=0))
    specs = scenario_specs(scenario)
    feed = MarketFeed(specs)
    await nursery.start(run_feed, ws, feed)
    if user_stream:
        await nursery.start(run_user_stream, ws, tracker, KEY.address)
    await nursery.start(ws.run)
    await ws.wait_live()
    http = HttpClient(BASE_URL, transport=sim.http_transport, random=Random(0))
    scheduler = RecordingScheduler(wall_ms)
    sender = Sender(
        scheduler, tracker, ws, http, NonceManager(wall_ms), KEY, is_mainnet=False, account_address=TRADER
    )
    rejects: list[RejectEvent] = []
    sender.reject_listeners.append(rejects.append)
    await nursery.start(sender.run)
    rig = ExitRig(
        sim, tracker, actor, scheduler, sender, feed, specs, FlattenGuard(), wall_ms, nursery, rejects
    )
    sim.exchange.add_listener(rig.record_sim_fill)
    nursery.start_soon(rig.pump_market_updates)
    await rig.until(lambda: all(state.mark_px is not None for state in feed.states.values()))
    return rig
