"""Serving one WebSocket connection with a `WsSession`, whatever carries the frames.

Two carriers exist: trio-websocket over memory streams (in-process tests) and Starlette's WebSocket under
Hypercorn (the loopback server). Both are adapted to `FrameConnection`, so the connection's life — greeting,
reader, writer, the 60 s idle close, the goodbye — is written once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Protocol

import attrs
import trio
import trio_websocket
from starlette.websockets import WebSocket, WebSocketDisconnect

from hip3.sim.transport_faults import TransportFaults
from hip3.sim.ws_session import ExchangeEndpoints, WsSession

DEFAULT_IDLE_TIMEOUT_S = 60.0
CLOSE_TIMEOUT_S = 5.0


FrameListener = Callable[[str, float], None]  # (frame text, trio.current_time())


@attrs.define
class FrameTiming:
    """Listeners told of every frame a session sends (after the carrier took it) and receives (as it
    arrives), with `trio.current_time()`: to measure the bot from the exchange's side (frame sent → order
    received).

    A listener that raises never takes the session down (the client would only see a dropped connection):
    `errors` counts such failures and `first_error` keeps the first, for the one measuring to check.
    """

    sent: list[FrameListener] = attrs.field(factory=list)
    received: list[FrameListener] = attrs.field(factory=list)
    errors: int = 0
    first_error: Exception | None = None

    def on_sent(self, text: str) -> None:
        self._tell(self.sent, text)

    def on_received(self, text: str) -> None:
        self._tell(self.received, text)

    def _tell(self, listeners: list[FrameListener], text: str) -> None:
        if not listeners:
            return
        now = trio.current_time()
        for listener in listeners:
            try:
                listener(text, now)
            except Exception as exc:  # counted and kept: the measurement's problem, not the session's
                self.errors += 1
                if self.first_error is None:
                    self.first_error = exc


class ConnectionGone(Exception):
    """The client closed the connection or it broke."""


class FrameConnection(Protocol):
    async def receive(self) -> str: ...  # raises ConnectionGone
    async def send(self, text: str) -> None: ...  # raises ConnectionGone
    async def close(self) -> None: ...


class TrioWebsocketFrames:
    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self._ws = ws

    async def receive(self) -> str:
        try:
            message = await self._ws.get_message()
        except trio_websocket.ConnectionClosed:
            raise ConnectionGone from None
        return message if isinstance(message, str) else message.decode(errors="replace")

    async def send(self, text: str) -> None:
        try:
            await self._ws.send_message(text)
        except trio_websocket.ConnectionClosed:
            raise ConnectionGone from None

    async def close(self) -> None:
        await self._ws.aclose()


class StarletteFrames:
    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket

    async def receive(self) -> str:
        message = await self._websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise ConnectionGone
        text = message.get("text")
        return text if text is not None else (message.get("bytes") or b"").decode(errors="replace")

    async def send(self, text: str) -> None:
        try:
            await self._websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            raise ConnectionGone from None

    async def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            await self._websocket.close()


async def _write_frames(
    connection: FrameConnection,
    session: WsSession,
    faults: TransportFaults,
    done: trio.CancelScope,
    timing: FrameTiming | None = None,
) -> None:
    with contextlib.suppress(ConnectionGone):
        async for text in session.outbox:
            if faults.spend_frame():
                break
            await connection.send(text)
            if timing is not None:
                timing.on_sent(text)
    done.cancel()


async def _drop_when_told(disconnect: trio.Event, done: trio.CancelScope) -> None:
    await disconnect.wait()
    done.cancel()


async def _read_frames(
    connection: FrameConnection, session: WsSession, idle_timeout_s: float, timing: FrameTiming | None = None
) -> None:
    """Hand client frames to the session until the client goes quiet, leaves, or cannot keep up."""
    while not session.overflowed.is_set():
        with trio.move_on_after(idle_timeout_s) as idle:
            text = await connection.receive()
        if idle.cancelled_caught:
            return
        if timing is not None:
            timing.on_received(text)
        session.on_text(text)


async def serve_session(
    exchange: ExchangeEndpoints,
    connection: FrameConnection,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    faults: TransportFaults | None = None,
    timing: FrameTiming | None = None,
) -> None:
    """One connection from accept to close; the server closes it after `idle_timeout_s` without a message,
    when the client cannot keep up, or when a transport fault says to drop it. `timing`, if given, is told of
    every frame sent and received."""
    faults = faults or TransportFaults()
    session: WsSession | None = None
    try:
        async with trio.open_nursery() as nursery:
            session = WsSession(exchange, faults=faults, delays=nursery)
            session.open()
            nursery.start_soon(_write_frames, connection, session, faults, nursery.cancel_scope, timing)
            nursery.start_soon(_drop_when_told, faults.disconnect, nursery.cancel_scope)
            with contextlib.suppress(ConnectionGone):
                await _read_frames(connection, session, idle_timeout_s, timing)
            nursery.cancel_scope.cancel()
    finally:
        if session is not None:
            session.close()
        # Shielded so a cancelled server still says goodbye; bounded so a silent peer cannot hang it.
        with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_TIMEOUT_S):
            await connection.close()
