"""A WebSocket peer over memory streams whose behaviour a test sets: what it acks, whether it answers pings,
what it sends. For the cases the simulator never produces (silent pings, missing acks, garbage frames)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import attrs
import trio
import trio.testing
import trio_websocket


@attrs.define
class ScriptedServer:
    nursery: trio.Nursery
    ack: bool = True
    answer_pings: bool = True
    frames_after_ack: Sequence[str] = ()
    received: list[tuple[float, str]] = attrs.field(factory=list)
    connections: int = 0

    async def connect(self, client_nursery: trio.Nursery) -> trio_websocket.WebSocketConnection:
        client_stream, server_stream = trio.testing.memory_stream_pair()
        self.nursery.start_soon(self._serve, server_stream)
        self.connections += 1
        return await trio_websocket.wrap_client_stream(client_nursery, client_stream, "scripted", "/ws")  # type: ignore[arg-type]

    async def _serve(self, stream: trio.abc.Stream) -> None:
        request = await trio_websocket.wrap_server_stream(self.nursery, stream)
        ws = await request.accept()
        await ws.send_message("Websocket connection established.")
        try:
            while True:
                await self._answer(ws, await ws.get_message())
        except trio_websocket.ConnectionClosed:
            pass

    async def _answer(self, ws: trio_websocket.WebSocketConnection, text: str | bytes) -> None:
        assert isinstance(text, str)
        self.received.append((trio.current_time(), text))
        message = json.loads(text)
        if message.get("method") == "ping" and self.answer_pings:
            await ws.send_message('{"channel":"pong"}')
        elif message.get("method") == "subscribe" and self.ack:
            ack = {"method": "subscribe", "subscription": message["subscription"]}
            await ws.send_message(json.dumps({"channel": "subscriptionResponse", "data": ack}))
            for frame in self.frames_after_ack:
                await ws.send_message(frame)
