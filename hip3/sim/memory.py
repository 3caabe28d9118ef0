"""In-memory transports: the simulated exchange and its client share one Trio process.

`SimHttpTransport` is an httpx transport that answers /info and /exchange by calling the engine;
`MemoryWsServer` serves WebSocket sessions over `trio.testing.memory_stream_pair` through trio-websocket. No
socket is opened, so under MockClock every timeout and delay happens at an exact virtual time.
"""

from __future__ import annotations

import json

import httpx
import trio
import trio.testing
import trio_websocket

from hip3.sim.transport_faults import TransportFaults
from hip3.sim.ws_serve import DEFAULT_IDLE_TIMEOUT_S, TrioWebsocketFrames, serve_session
from hip3.sim.ws_session import HTTP_OK, ExchangeEndpoints, http_post_reply

HTTP_NOT_FOUND = 404


def _response(status: int, body: object) -> httpx.Response:
    if status != HTTP_OK and isinstance(body, str):
        return httpx.Response(status, text=body)
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )


class SimHttpTransport(httpx.AsyncBaseTransport):
    """POST /info and POST /exchange answered by the engine, in process."""

    def __init__(self, exchange: ExchangeEndpoints, faults: TransportFaults | None = None) -> None:
        self._exchange = exchange
        self._faults = faults or TransportFaults()
        self._routes = {"/info": exchange.info, "/exchange": exchange.exchange}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await trio.lowlevel.checkpoint()
        route = self._routes.get(request.url.path)
        if request.method != "POST" or route is None:
            return httpx.Response(HTTP_NOT_FOUND, text="Not Found")
        return _response(*http_post_reply(route, await request.aread(), self._faults))


class MemoryWsServer:
    """Accepts WebSocket connections made over memory streams; each runs in the server's nursery."""

    def __init__(
        self,
        exchange: ExchangeEndpoints,
        nursery: trio.Nursery,
        *,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        faults: TransportFaults | None = None,
    ) -> None:
        self._exchange = exchange
        self._nursery = nursery
        self._faults = faults or TransportFaults()
        self.idle_timeout_s = idle_timeout_s
        self.connections = 0

    async def connect(
        self, client_nursery: trio.Nursery, resource: str = "/ws"
    ) -> trio_websocket.WebSocketConnection:
        """Open a client connection; its reader task runs in `client_nursery`."""
        client_stream, server_stream = trio.testing.memory_stream_pair()
        self._nursery.start_soon(self._accept, server_stream)
        self.connections += 1
        return await trio_websocket.wrap_client_stream(client_nursery, client_stream, "sim.local", resource)  # type: ignore[arg-type]

    async def _accept(self, stream: trio.abc.Stream) -> None:
        request = await trio_websocket.wrap_server_stream(self._nursery, stream)
        ws = await request.accept()
        await serve_session(self._exchange, TrioWebsocketFrames(ws), self.idle_timeout_s, self._faults)
