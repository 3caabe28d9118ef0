"""Resync and the user stream against the in-memory simulator: start-up, the reconnect gap, readiness."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from decimal import Decimal as D
from typing import Any

import attrs
import pytest
import trio
import trio.lowlevel
import trio.testing

from hip3.core.clock import trio_wall_clock
from hip3.core.order import Side, Tif
from hip3.core.watched import Watched
from hip3.execution.readiness import Readiness
from hip3.net.ws import ConnectionState, WsConnection, WsSettings
from hip3.position.resync import Resyncer
from hip3.position.tracker import PositionTracker
from hip3.position.user_stream import run_user_stream
from hip3.protocol.actions import OrderRequest, exchange_request, order_action
from hip3.protocol.signing import SigningKey, sign_l1_action
from hip3.sim.harness import WALL_START_MS, MemorySim, run_memory_sim
from hip3.sim.scenario_file import shipped_scenario

KEY = SigningKey.from_hex("0x0123456789012345678901234567890123456789012345678901234567890123")
USER = KEY.address
TSLA = "xyz:TSLA"
DEX_COINS = {"": frozenset({"BTC"}), "xyz": frozenset({"xyz:TSLA", "xyz:GOLD"})}
_nonces = itertools.count(1)


@attrs.define
class Rig:
    sim: MemorySim
    tracker: PositionTracker
    ws: WsConnection
    synced: Watched[bool]
    resyncer: Resyncer
    info_calls: list[float]

    async def info(self, request: Mapping[str, Any]) -> Any:
        self.info_calls.append(trio.current_time())
        async with self.sim.http_client() as http:
            return (await http.post("/info", json=dict(request))).json()

    async def buy_tsla(self, size: str) -> None:
        """Trade on the exchange directly (like a manual trade, or one whose events we miss)."""
        nonce = self.sim.exchange.now_ms() + next(_nonces)
        order = OrderRequest(asset=110000, side=Side.BUY, price=D(440), size=D(size), tif=Tif.IOC)
        action = order_action([order])
        signature = dict(sign_l1_action(KEY, action, nonce=nonce, is_mainnet=False))
        async with self.sim.http_client() as http:
            answer = (
                await http.post("/exchange", json=exchange_request(action, signature, nonce=nonce))
            ).json()
        assert "filled" in answer["response"]["data"]["statuses"][0], answer

    async def exchange_size(self) -> D:
        state = await self.info({"type": "clearinghouseState", "user": USER, "dex": "xyz"})
        sizes = [D(p["position"]["szi"]) for p in state["assetPositions"] if p["position"]["coin"] == TSLA]
        return sizes[0] if sizes else D(0)


async def start_rig(
    nursery: trio.Nursery, *, interval_s: float = 0, hold_until: Watched[bool] | None = None
) -> Rig:
    sim: MemorySim = await nursery.start(
        lambda task_status: run_memory_sim(
            shipped_scenario("calm"), fund=[(USER, D(10_000))], task_status=task_status
        )
    )
    tracker = PositionTracker(trio_wall_clock(WALL_START_MS))
    await nursery.start(tracker.run)
    ws = WsConnection(sim.ws_server.connect, WsSettings(reconnect_jitter=0))
    synced = Watched(False)
    rig = Rig(sim, tracker, ws, synced, None, [])  # type: ignore[arg-type]
    rig.resyncer = Resyncer(tracker.handle, rig.info, USER, DEX_COINS)
    await nursery.start(
        lambda task_status: run_user_stream(ws, tracker.handle, USER, task_status=task_status)
    )
    await nursery.start(ws.run)
    await ws.wait_live()
    await nursery.start(
        lambda task_status: rig.resyncer.run(
            interval_s=interval_s,
            ws_status=ws.status,
            synced=synced,
            hold_until=hold_until,
            task_status=task_status,
        )
    )
    return rig


async def test_start_up_resync_installs_what_the_exchange_holds(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim: MemorySim = await nursery.start(
        lambda task_status: run_memory_sim(
            shipped_scenario("calm"), fund=[(USER, D(10_000))], task_status=task_status
        )
    )
    rig = Rig(sim, PositionTracker(trio_wall_clock(WALL_START_MS)), None, Watched(False), None, [])  # type: ignore[arg-type]
    await rig.buy_tsla("0.05")
    await nursery.start(rig.tracker.run)
    await Resyncer(rig.tracker.handle, rig.info, USER, DEX_COINS).once()
    position = rig.tracker.handle.position(TSLA)
    assert position is not None and position.size == D("0.05") == await rig.exchange_size()


async def test_the_user_stream_moves_positions(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery)
    assert rig.synced.value
    await rig.buy_tsla("0.03")
    await trio.sleep(0.01)
    await rig.tracker.handle.settled()
    position = rig.tracker.handle.position(TSLA)
    assert position is not None and position.size == D("0.03") == await rig.exchange_size()


async def test_a_fill_during_the_reconnect_gap_is_reconciled_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery)
    handle = rig.tracker.handle
    await rig.buy_tsla("0.03")
    await trio.sleep(0.01)
    await handle.settled()
    rig.sim.faults.drop_websockets()
    await rig.ws.status.wait_for(lambda s: s.state is ConnectionState.DISCONNECTED)
    await trio.lowlevel.checkpoint()
    assert not rig.synced.value  # no entries until the exchange has confirmed positions again
    await rig.buy_tsla("0.04")  # its userFills and orderUpdates go nowhere: no connection
    await rig.ws.wait_live(after_epoch=1)
    await rig.synced.wait_for(lambda value: value)
    await handle.settled()
    position = handle.position(TSLA)
    assert position is not None and position.size == D("0.07") == await rig.exchange_size()
    # the resubscription's snapshot holds both fills: one already streamed, one from the gap; neither is
    # replayed into positions (the gap fill came in through the resync)
    assert rig.tracker.stats["fills_duplicate"] == 1 and rig.tracker.stats["fills_in_snapshot"] == 1


async def test_a_resync_after_a_reconnect_waits_for_the_reconcile(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    """A snapshot accepted before the reconcile applied the gap's fills would hold them: the tracker would
    not apply them, and the journal would never see them. So the reconnect's resync waits for the
    reconcile."""
    reconciled = Watched(True)
    rig = await start_rig(nursery, hold_until=reconciled)
    calls_before = len(rig.info_calls)
    reconciled.set(False)  # as the reconcile task does when the connection drops
    rig.sim.faults.drop_websockets()
    await rig.ws.wait_live(after_epoch=1)
    await trio.sleep(30)
    assert len(rig.info_calls) == calls_before and not rig.synced.value
    reconciled.set(True)
    await rig.synced.wait_for(lambda value: value)
    assert len(rig.info_calls) == calls_before + len(DEX_COINS)


@pytest.mark.deadline(300)
async def test_periodic_resync_at_exact_intervals(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    rig = await start_rig(nursery, interval_s=60)
    start = rig.info_calls[0]
    await trio.sleep(130)
    per_dex = len(DEX_COINS)
    assert [round(t - start, 6) for t in rig.info_calls[::per_dex]] == [0.0, 60.0, 120.0]


async def test_readiness_reasons(nursery: trio.Nursery, autojump_clock: trio.testing.MockClock) -> None:
    rig = await start_rig(nursery)
    blocked: list[str | None] = [None]
    readiness = Readiness(rig.ws.status, rig.synced, lambda: blocked[0])
    assert readiness.not_ready() is None
    blocked[0] = "clock skew 7000 ms against the exchange exceeds the 5000 ms bound"
    assert readiness.not_ready() == blocked[0]
    blocked[0] = None
    rig.sim.faults.drop_websockets()
    await rig.ws.status.wait_for(lambda s: s.state is ConnectionState.DISCONNECTED)
    assert readiness.not_ready() == "websocket disconnected (every subscription acknowledged is required)"
    await rig.ws.wait_live(after_epoch=1)
    reason = readiness.not_ready()
    assert reason is None or reason == "positions not synced since the last (re)connection"
    await rig.synced.wait_for(lambda value: value)
    assert readiness.not_ready() is None
