"""Every fault the simulator can inject, over the in-memory transports, at exact virtual times."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import attrs
import pytest
import trio
import trio.testing
import trio_websocket

from hip3.core.order import Side, Tif
from hip3.protocol.actions import OrderRequest, exchange_request, order_action
from hip3.protocol.signing import SigningKey, sign_l1_action
from hip3.sim.harness import MemorySim, run_memory_sim
from hip3.sim.scenario import FaultDef
from hip3.sim.scenario_file import shipped_scenario
from hip3.sim.ws_session import GREETING

KEY = SigningKey.from_hex("0x0123456789012345678901234567890123456789012345678901234567890123")
USER = KEY.address
TSLA_ASSET = 110000


@attrs.define
class Client:
    sim: MemorySim
    ws: trio_websocket.WebSocketConnection
    start: float
    last_nonce: int = 0

    def next_nonce(self) -> int:
        self.last_nonce = max(self.last_nonce + 1, self.sim.exchange.now_ms())
        return self.last_nonce

    def now(self) -> float:
        return trio.current_time() - self.start

    async def frame(self) -> dict[str, Any]:
        return json.loads(await self.ws.get_message())  # type: ignore[no-any-return]

    async def frame_on(self, channel: str) -> dict[str, Any]:
        while (frame := await self.frame())["channel"] != channel:
            pass
        return frame

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_message(json.dumps(message))

    async def subscribe(self, subscription: dict[str, Any]) -> None:
        await self.send({"method": "subscribe", "subscription": subscription})
        assert (await self.frame())["channel"] == "subscriptionResponse"

    def signed_ioc_buy(self, size: str = "0.05", price: str = "440") -> dict[str, Any]:
        nonce = self.next_nonce()
        order = OrderRequest(asset=TSLA_ASSET, side=Side.BUY, price=D(price), size=D(size), tif=Tif.IOC)
        action = order_action([order])
        return exchange_request(
            action, dict(sign_l1_action(KEY, action, nonce=nonce, is_mainnet=False)), nonce=nonce
        )

    async def post_action(self, request_id: int, body: dict[str, Any]) -> None:
        await self.send({"method": "post", "id": request_id, "request": {"type": "action", "payload": body}})


@pytest.fixture
async def client(nursery: trio.Nursery) -> AsyncIterator[Client]:
    # pytest-trio takes the clock from the test's own arguments: every test here asks for autojump_clock.
    scenario = attrs.evolve(shipped_scenario("calm"), faults=())
    sim: MemorySim = await nursery.start(
        lambda task_status: run_memory_sim(scenario, fund=[(USER, D(10_000))], task_status=task_status)
    )
    ws = await sim.ws_server.connect(nursery)
    assert await ws.get_message() == GREETING
    yield Client(sim, ws, trio.current_time())


async def test_drop_websockets_closes_live_connections_and_new_ones_work(
    client: Client, autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    client.sim.faults.drop_websockets()
    with pytest.raises(trio_websocket.ConnectionClosed):
        await client.ws.get_message()
    assert client.now() == 0
    fresh = await client.sim.ws_server.connect(nursery)
    assert await fresh.get_message() == GREETING


async def test_drop_websockets_after_frames(client: Client, autojump_clock: trio.testing.MockClock) -> None:
    await client.subscribe({"type": "bbo", "coin": "xyz:TSLA"})
    client.sim.faults.drop_websockets_after_frames(2)
    await client.send({"method": "ping"})
    await client.send({"method": "ping"})
    await client.send({"method": "ping"})
    assert [(await client.frame())["channel"] for _ in range(2)] == ["pong", "pong"]
    with pytest.raises(trio_websocket.ConnectionClosed):
        await client.frame()


async def test_dropped_post_response(client: Client, autojump_clock: trio.testing.MockClock) -> None:
    client.sim.faults.drop_post_responses(1)
    info = {"type": "info", "payload": {"type": "allMids", "dex": "xyz"}}
    await client.send({"method": "post", "id": 1, "request": info})
    await client.send({"method": "post", "id": 2, "request": info})
    assert (await client.frame_on("post"))["data"]["id"] == 2


async def test_delayed_post_response_arrives_exactly_late(
    client: Client, autojump_clock: trio.testing.MockClock
) -> None:
    client.sim.faults.delay_post_responses(2.5)
    await trio.sleep(1)
    await client.post_action(7, client.signed_ioc_buy())
    frame = await client.frame_on("post")
    assert frame["data"]["id"] == 7
    assert frame["data"]["response"]["payload"]["status"] == "ok"
    assert client.now() == 3.5


async def test_dropped_order_updates(client: Client, autojump_clock: trio.testing.MockClock) -> None:
    await client.subscribe({"type": "orderUpdates", "user": USER})
    client.sim.faults.drop_order_updates(1)
    await client.post_action(1, client.signed_ioc_buy())
    await client.post_action(2, client.signed_ioc_buy())
    frames = []
    while sum(frame["channel"] == "post" for frame in frames) < 2:  # updates may come before or after
        frames.append(await client.frame())
    oids = [
        f["data"]["response"]["payload"]["response"]["data"]["statuses"][0]["filled"]["oid"]
        for f in frames
        if f["channel"] == "post"
    ]
    updates = [u for f in frames if f["channel"] == "orderUpdates" for u in f["data"]]
    assert [(u["order"]["oid"], u["status"]) for u in updates] == [(oids[1], "filled")]


async def test_duplicated_user_fills(client: Client, autojump_clock: trio.testing.MockClock) -> None:
    await client.send({"method": "subscribe", "subscription": {"type": "userFills", "user": USER}})
    assert (await client.frame_on("userFills"))["data"]["isSnapshot"] is True
    client.sim.faults.duplicate_user_fills(1)
    await client.post_action(1, client.signed_ioc_buy())
    first = await client.frame_on("userFills")
    second = await client.frame_on("userFills")
    assert first == second
    assert first["data"]["fills"][0]["tid"] == second["data"]["fills"][0]["tid"]


async def test_delayed_user_fills(client: Client, autojump_clock: trio.testing.MockClock) -> None:
    await client.send({"method": "subscribe", "subscription": {"type": "userFills", "user": USER}})
    await client.frame_on("userFills")
    client.sim.faults.delay_user_fills(1.5)
    await client.post_action(1, client.signed_ioc_buy())
    await client.frame_on("post")
    assert client.now() == 0
    fill = await client.frame_on("userFills")
    assert fill["data"]["fills"][0]["side"] == "B"
    assert client.now() == 1.5


async def test_rest_rate_limited(client: Client, autojump_clock: trio.testing.MockClock) -> None:
    client.sim.faults.rate_limit_rest(2)
    async with client.sim.http_client() as http:
        answers = [await http.post("/info", json={"type": "allMids"}) for _ in range(3)]
    assert [(a.status_code, a.text) for a in answers[:2]] == [(429, "null"), (429, "null")]
    assert answers[2].status_code == 200


async def test_stopped_market_data_for_one_market(
    client: Client, autojump_clock: trio.testing.MockClock
) -> None:
    await client.subscribe({"type": "activeAssetCtx", "coin": "xyz:TSLA"})
    await client.subscribe({"type": "activeAssetCtx", "coin": "xyz:GOLD"})
    client.sim.faults.stop_market_data("xyz:TSLA")
    seen: list[tuple[float, str]] = []
    with trio.move_on_after(10):
        while True:
            frame = await client.frame_on("activeAssetCtx")
            seen.append((client.now(), frame["data"]["coin"]))
    assert seen == [(3.0, "xyz:GOLD"), (6.0, "xyz:GOLD"), (9.0, "xyz:GOLD")]
    client.sim.faults.stop_market_data("xyz:TSLA", stopped=False)
    coins = {(await client.frame_on("activeAssetCtx"))["data"]["coin"] for _ in range(2)}
    assert coins == {"xyz:TSLA", "xyz:GOLD"}
    assert client.now() == 12.0


async def test_halted_market_rejects_orders(client: Client, autojump_clock: trio.testing.MockClock) -> None:
    client.sim.faults.halt_market("xyz:TSLA")
    await client.post_action(1, client.signed_ioc_buy())
    statuses = (await client.frame_on("post"))["data"]["response"]["payload"]["response"]["data"]["statuses"]
    assert statuses == [{"error": "Trading is halted for this asset."}]


async def test_changed_sz_decimals_shows_in_meta_and_the_lot_rule(
    client: Client, autojump_clock: trio.testing.MockClock
) -> None:
    client.sim.faults.change_sz_decimals("xyz:TSLA", 1)
    async with client.sim.http_client() as http:
        meta = (await http.post("/info", json={"type": "meta", "dex": "xyz"})).json()
    assert meta["universe"][0]["szDecimals"] == 1
    await client.post_action(1, client.signed_ioc_buy(size="0.05"))
    statuses = (await client.frame_on("post"))["data"]["response"]["payload"]["response"]["data"]["statuses"]
    assert statuses == [{"error": "Order has invalid size."}]


async def test_skewed_server_clock_moves_the_nonce_window(
    client: Client, autojump_clock: trio.testing.MockClock
) -> None:
    body = client.signed_ioc_buy()  # nonce = the server's now, before the skew
    client.sim.faults.skew_clock(-3 * 86_400_000)
    await client.post_action(1, body)
    payload = (await client.frame_on("post"))["data"]["response"]["payload"]
    assert payload["status"] == "err"
    assert payload["response"].startswith(f"Invalid nonce: nonce too high {body['nonce']} > ")


async def test_forced_rejects(client: Client, autojump_clock: trio.testing.MockClock) -> None:
    client.sim.faults.reject_next_orders(1, "Insufficient margin to place order.")
    await client.post_action(1, client.signed_ioc_buy())
    await client.post_action(2, client.signed_ioc_buy())
    first = (await client.frame_on("post"))["data"]["response"]["payload"]["response"]["data"]["statuses"]
    second = (await client.frame_on("post"))["data"]["response"]["payload"]["response"]["data"]["statuses"]
    assert first == [{"error": "Insufficient margin to place order."}]
    assert "filled" in second[0]


async def test_faults_from_the_scenario_file_fire_at_their_time(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    scenario = attrs.evolve(
        shipped_scenario("calm"),
        faults=(
            FaultDef(at_ms=5_000, kind="drop_websockets"),
            FaultDef(at_ms=2_000, kind="halt_market", params={"coin": "xyz:GOLD"}),
        ),
    )
    sim: MemorySim = await nursery.start(run_memory_sim, scenario)
    start = trio.current_time()
    ws = await sim.ws_server.connect(nursery)
    assert await ws.get_message() == GREETING
    with pytest.raises(trio_websocket.ConnectionClosed):
        while True:
            await ws.get_message()
    assert trio.current_time() - start == 5.0
    async with sim.http_client() as http:
        answer = await http.post("/info", json={"type": "openOrders", "user": USER, "dex": "xyz"})
    assert answer.status_code == 200
