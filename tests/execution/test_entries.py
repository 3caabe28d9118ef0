"""Signals into entry orders against the in-memory simulator: price, size, gates, queue, and the fill."""

from __future__ import annotations

from decimal import Decimal as D

import attrs
import trio
import trio.testing

from hip3.core.clock import trio_wall_clock
from hip3.core.market import MarketKey, MarketSpec
from hip3.core.order import Side
from hip3.execution.action_budget import ActionBudget
from hip3.execution.entries import EntryPipeline
from hip3.execution.gates import EntryGates, Limits
from hip3.execution.nonce import NonceManager
from hip3.execution.scheduler import Scheduler
from hip3.execution.sender import Sender
from hip3.net.http import HttpClient
from hip3.net.ws import WsConnection, WsSettings
from hip3.position.tracker import PositionTracker
from hip3.protocol.signing import SigningKey
from hip3.sim.harness import WALL_START_MS, MemorySim, run_memory_sim
from hip3.sim.scenario_file import shipped_scenario
from hip3.strategy.signal import Signal

KEY = SigningKey.from_hex("0x0123456789012345678901234567890123456789012345678901234567890123")
TSLA, GOLD = "xyz:TSLA", "xyz:GOLD"
SPECS = {
    TSLA: MarketSpec(name=TSLA, key=MarketKey("xyz", 1, 0), sz_decimals=3, max_leverage=10),
    GOLD: MarketSpec(name=GOLD, key=MarketKey("xyz", 1, 1), sz_decimals=4, max_leverage=10),
}
MARKS = {TSLA: D("430.55"), GOLD: D("2650.5")}


@attrs.define
class Rig:
    sim: MemorySim
    tracker: PositionTracker
    pipeline: EntryPipeline
    scheduler: Scheduler

    def best_ask(self, coin: str = TSLA) -> tuple[D, D]:
        level = self.sim.exchange.info({"type": "l2Book", "coin": coin})[1]["levels"][1][0]  # type: ignore[index]
        return D(level["px"]), D(level["sz"])

    def signal(self, size: str, coin: str = TSLA) -> Signal:
        px, sz = self.best_ask(coin)
        return Signal(
            id="s1", coin=coin, side=Side.BUY, raw_edge_bps=40.0, net_edge_bps=29.0, threshold_bps=11.0,
            oracle_px=px * D("1.004"), best_px=px, best_sz=sz, suggested_size=D(size), baseline_bps=0.0,
            filters={}, detected_at=trio.current_time(), oracle_update=1,
        )  # fmt: skip


async def start_rig(nursery: trio.Nursery, *, max_new_orders: int = 64, run_sender: bool = True) -> Rig:
    sim: MemorySim = await nursery.start(
        lambda task_status: run_memory_sim(
            shipped_scenario("calm"), fund=[(KEY.address, D(10_000))], task_status=task_status
        )
    )
    wall = trio_wall_clock(WALL_START_MS)
    tracker = PositionTracker(wall)
    await nursery.start(tracker.run)
    ws = WsConnection(sim.ws_server.connect, WsSettings(reconnect_jitter=0))
    await nursery.start(ws.run)
    await ws.wait_live()
    http = HttpClient("http://sim.local", transport=sim.http_transport)
    scheduler = Scheduler(max_new_orders=max_new_orders)
    sender = Sender(
        scheduler,
        tracker.handle,
        ws,
        http,
        NonceManager(wall),
        KEY,
        is_mainnet=False,
        account_address=KEY.address,
    )
    if run_sender:
        await nursery.start(sender.run)
    gates = EntryGates(
        tracker.handle, Limits(D(50), D(100), 2), marks=MARKS.get, hard_stop=lambda: None,
        not_ready=lambda: None, flattening=lambda coin: False, budget=ActionBudget(1000),
    )  # fmt: skip
    pipeline = EntryPipeline(
        gates, scheduler, tracker.handle, SPECS, MARKS.get, max_order_notional=D(50), slippage_bps=D(2)
    )
    return Rig(sim, tracker, pipeline, scheduler)


async def settle(rig: Rig) -> None:
    for _ in range(5):
        await trio.sleep(0.01)
        await rig.tracker.handle.settled()


async def test_a_buy_signal_becomes_an_ioc_at_the_ask_plus_slippage_and_fills(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery)
    ask, _ = rig.best_ask()
    await rig.pipeline.on_signal(rig.signal("0.05"))
    [order] = rig.tracker.handle.pending_orders()
    assert order.size == D("0.05") and order.limit_px >= ask * D("1.0002") and order.limit_px - ask < D("0.1")
    await settle(rig)
    position = rig.tracker.handle.position(TSLA)
    assert position is not None and position.size == D("0.05") and position.entry_px == ask
    assert rig.pipeline.stats["queued"] == 1


async def test_a_second_signal_on_a_held_market_is_refused(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery)
    await rig.pipeline.on_signal(rig.signal("0.05"))
    await settle(rig)
    await rig.pipeline.on_signal(rig.signal("0.05"))
    assert rig.pipeline.stats["refused_has_position"] == 1


async def test_an_oversized_signal_is_shrunk_to_the_cap(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery)
    await rig.pipeline.on_signal(rig.signal("1"))  # $430 wanted, $50 allowed
    await settle(rig)
    position = rig.tracker.handle.position(TSLA)
    assert position is not None and position.size * MARKS[TSLA] <= D(50)


async def test_a_tiny_signal_is_dropped_by_sizing(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery)
    await rig.pipeline.on_signal(rig.signal("0.0004"))  # floors to zero at lot 0.001
    assert rig.pipeline.stats["size_dropped"] == 1 and rig.tracker.handle.pending_count(TSLA) == 0


async def test_a_full_scheduler_ends_the_order_at_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery, max_new_orders=1, run_sender=False)
    await rig.pipeline.on_signal(rig.signal("0.05"))  # takes the one place (nothing sends it)
    assert rig.scheduler.queued() == (0, 0, 1)
    await rig.pipeline.on_signal(rig.signal("0.005", GOLD))
    await rig.tracker.handle.settled()
    assert rig.pipeline.stats["scheduler_full"] == 1 and rig.tracker.handle.pending_count(GOLD) == 0
