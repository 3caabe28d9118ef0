"""The in-memory transports under MockClock: exact virtual times, no sockets."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
import trio.testing
import trio_websocket

from hip3.sim.memory import MemoryWsServer, SimHttpTransport
from hip3.sim.ws_session import GREETING
from tests.sim_front.fake_exchange import BOOK, FakeExchange


async def test_http_transport_answers_info_and_exchange() -> None:
    exchange = FakeExchange()
    async with httpx.AsyncClient(transport=SimHttpTransport(exchange), base_url="http://sim") as client:
        info = await client.post("/info", json={"type": "l2Book", "coin": "xyz:TSLA"})
        action = await client.post("/exchange", json={"action": {"type": "noop"}})
        bad_json = await client.post("/info", content=b"{not json")
        unknown = await client.post("/info", json={"type": "nope"})
        bad_dex = await client.post("/info", json={"type": "meta", "dex": "zzz"})
        wrong_path = await client.get("/info")
    assert (info.status_code, info.json()) == (200, BOOK)
    assert action.json() == {"status": "ok", "response": {"type": "default"}}
    assert bad_json.status_code == 422
    assert bad_json.text.startswith("Failed to deserialize the JSON body into the target type: ")
    assert (unknown.status_code, unknown.text) == (
        422,
        "Failed to deserialize the JSON body into the target type",
    )
    assert (bad_dex.status_code, bad_dex.text) == (500, "null")
    assert wrong_path.status_code == 404
    assert exchange.requests[1] == ("exchange", {"action": {"type": "noop"}})


async def test_websocket_over_memory_streams(autojump_clock: trio.testing.MockClock) -> None:
    exchange = FakeExchange()
    async with trio.open_nursery() as nursery:
        server = MemoryWsServer(exchange, nursery)
        ws = await server.connect(nursery)
        assert await ws.get_message() == GREETING
        await ws.send_message(
            json.dumps({"method": "subscribe", "subscription": {"type": "l2Book", "coin": "xyz:TSLA"}})
        )
        ack = json.loads(await ws.get_message())
        assert ack["channel"] == "subscriptionResponse"
        assert json.loads(await ws.get_message()) == {"channel": "l2Book", "data": BOOK}
        await ws.aclose()
        nursery.cancel_scope.cancel()


@pytest.mark.deadline(300)
async def test_server_closes_a_connection_quiet_for_60_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    exchange = FakeExchange()
    async with trio.open_nursery() as nursery:
        server = MemoryWsServer(exchange, nursery)
        ws = await server.connect(nursery)
        start = trio.current_time()
        assert await ws.get_message() == GREETING
        await trio.sleep(59)
        await ws.send_message('{"method":"ping"}')  # a client message resets the server's idle timer
        assert json.loads(await ws.get_message()) == {"channel": "pong"}
        with pytest.raises(trio_websocket.ConnectionClosed):
            await ws.get_message()
        assert trio.current_time() - start == pytest.approx(59 + 60)
        assert exchange.listeners == []
        nursery.cancel_scope.cancel()
