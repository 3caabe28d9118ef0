"""The bot's one WebSocket connection to the exchange, kept alive and subscribed.

`WsConnection` owns the socket: a reader task that parses every frame and routes it, a writer task that is the
only thing sending (from a bounded outbound queue, under the shared 2000-messages-a-minute limit), and a
heartbeat. Its state (DISCONNECTED → CONNECTING → SUBSCRIBING → LIVE) and an epoch that grows with every new
connection are observable, so consumers can wait for LIVE and notice that a reconnect happened.

Subscriptions are declared once and restored on every connection; LIVE means every declared subscription was
acknowledged, not that some data arrived (predecessor M-004, W-001). Reconnects back off exponentially with
jitter and a cap; the attempt counter resets once a connection has stayed healthy (predecessor §6 item 14).
Post requests carry ids, a timeout and a bound on how many are in flight; when the socket is down a post fails
at once with `WsUnavailable` so the caller can use HTTP instead. A malformed or unknown frame is counted and
logged once per kind; it never takes the connection down.
"""

from __future__ import annotations

import enum
import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import attrs
import structlog
import trio
import trio_websocket

from hip3.core.exceptions import first_leaf
from hip3.core.watched import Watched
from hip3.net.weight_budget import WeightBudget
from hip3.protocol.messages import (
    ErrorFrame,
    Frame,
    Greeting,
    Malformed,
    Pong,
    PostResponse,
    SubscriptionAck,
    SubscriptionKey,
    parse_frame,
    subscription_key,
)

log = structlog.get_logger(__name__)

Connector = Callable[[trio.Nursery], Awaitable[trio_websocket.WebSocketConnection]]
CANCELLED_CLOSE_TIMEOUT_S = 0.1
CLOSE_TIMEOUT_S = 2.0
PING = json.dumps({"method": "ping"})
CONSUMER_BUFFER = 1000
FrameHandler = Callable[[Any, float], None]


def url_connector(url: str, *, message_queue_size: int = 256, max_message_size: int = 1 << 22) -> Connector:
    """Connect to a ws:// or wss:// URL (the exchange or the loopback simulator). Trio sets TCP_NODELAY."""

    async def connect(nursery: trio.Nursery) -> trio_websocket.WebSocketConnection:
        return await trio_websocket.connect_websocket_url(
            nursery, url, message_queue_size=message_queue_size, max_message_size=max_message_size
        )

    return connect


class ConnectionState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    SUBSCRIBING = "subscribing"
    LIVE = "live"


@attrs.frozen
class Status:
    state: ConnectionState
    epoch: int  # how many connections have been opened; grows by one with each new connection


@attrs.frozen(kw_only=True)
class WsSettings:
    heartbeat_interval_s: float = 45.0  # ping when nothing was sent for this long (the server closes at 60 s)
    pong_timeout_s: float = 10.0
    connect_timeout_s: float = 10.0
    subscribe_timeout_s: float = 10.0
    reconnect_base_s: float = 1.0
    reconnect_max_s: float = 60.0
    reconnect_jitter: float = 0.2  # each delay is scaled by a uniform factor in [1 - jitter, 1 + jitter]
    healthy_reset_s: float = 30.0  # a connection LIVE this long resets the backoff
    max_reconnect_attempts: int = 0  # 0: never give up
    post_timeout_s: float = 5.0
    max_inflight_posts: int = 100
    messages_per_minute: int = 2000
    outbound_queue_size: int = 1000


class WsError(Exception):
    """Base of the connection's typed errors."""


class WsUnavailable(WsError):
    """The socket is not connected: the request was not sent (use the HTTP path)."""


class PostOutcomeUnknown(WsError):
    """A post was sent but no answer came (timeout or disconnect): the action may or may not have happened."""


class ReconnectGaveUp(WsError):
    """`max_reconnect_attempts` connections in a row failed."""


class _ConnectionLost(Exception):
    """Why one connection ended; the supervisor reconnects."""


CONNECTION_ENDINGS = (
    _ConnectionLost,
    trio_websocket.ConnectionClosed,
    trio_websocket.HandshakeError,
    OSError,
)


def _subscribe_message(subscription: Mapping[str, Any]) -> str:
    return json.dumps({"method": "subscribe", "subscription": subscription})


def _only_cancelled(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_cancelled(inner) for inner in exc.exceptions)
    return isinstance(exc, trio.Cancelled)


@attrs.define
class _PendingPost:
    done: trio.Event = attrs.field(factory=trio.Event)
    response: PostResponse | None = None


class WsConnection:
    def __init__(
        self, connector: Connector, settings: WsSettings | None = None, *, rng: random.Random | None = None
    ) -> None:
        self._connector = connector
        self._settings = settings or WsSettings()
        self._rng = rng or random.Random()
        self.status = Watched(Status(ConnectionState.DISCONNECTED, 0))
        self.stats: Counter[str] = Counter()
        self._subscriptions: dict[SubscriptionKey, dict[str, Any]] = {}
        self._acked: set[SubscriptionKey] = set()
        self._routes: dict[type, list[trio.MemorySendChannel[Any]]] = {}
        self._handlers: dict[type, list[FrameHandler]] = {}
        self._budget = WeightBudget(per_minute=self._settings.messages_per_minute)
        self._outbound_send: trio.MemorySendChannel[str] | None = None
        self._pending_posts: dict[int, _PendingPost] = {}
        self._inflight = trio.Semaphore(self._settings.max_inflight_posts)
        self._next_post_id = 0
        self._last_sent = 0.0
        self._pong = trio.Event()
        self._logged_kinds: set[str] = set()
        # called with each raw text frame and its receive time before it is parsed (the market recorder)
        self.raw_listeners: list[Callable[[str, float], None]] = []
        self._live_since: float | None = None

    # -- declaring what we want ----------------------------------------------------------------------

    def subscribe(self, subscription: Mapping[str, Any]) -> None:
        """Declare a subscription; it is sent on every connection, now and after each reconnect."""
        key = subscription_key(subscription)
        if key is None:
            raise ValueError(f"not a subscription the exchange knows: {dict(subscription)!r}")
        self._subscriptions[key] = dict(subscription)
        if self._outbound_send is not None:
            self._outbound_send.send_nowait(_subscribe_message(self._subscriptions[key]))
            if self.status.value.state is ConnectionState.LIVE:
                self._set_state(ConnectionState.SUBSCRIBING)

    def frames(self, *kinds: type, buffer: int = CONSUMER_BUFFER) -> trio.MemoryReceiveChannel[Any]:
        """A bounded channel of the data frames of these kinds (Bbo, OrderUpdates, …), in arrival order.

        When a consumer's channel is full the reader waits: a slow consumer slows the socket, nothing is lost.
        """
        send, receive = trio.open_memory_channel[Any](buffer)
        for kind in kinds:
            self._routes.setdefault(kind, []).append(send)
        return receive

    def on_frames(self, handler: FrameHandler, *kinds: type) -> Callable[[], None]:
        """Call `handler(frame, received_at)` from the reader for each data frame of these kinds, before any
        channel gets it; returns the function that removes it.

        For a consumer that folds a frame into state and never waits (the market feed): the frame is taken in
        at its receive time, with no task switch between the socket and the state.
        """
        for kind in kinds:
            self._handlers.setdefault(kind, []).append(handler)

        def remove() -> None:
            for kind in kinds:
                self._handlers[kind].remove(handler)

        return remove

    async def wait_live(self, *, after_epoch: int = 0) -> Status:
        """Wait until the connection is LIVE on a connection newer than `after_epoch`."""
        return await self.status.wait_for(lambda s: s.state is ConnectionState.LIVE and s.epoch > after_epoch)

    # -- the supervisor --------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[WsConnection] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, reconnecting with backoff, until cancelled or max_reconnect_attempts failures in a row."""
        task_status.started(self)
        failures = 0
        while True:
            live_for = await self._one_connection()
            failures = 0 if live_for >= self._settings.healthy_reset_s else failures + 1
            if self._settings.max_reconnect_attempts and failures > self._settings.max_reconnect_attempts:
                raise ReconnectGaveUp(f"{failures} connection attempts in a row failed")
            delay = self._backoff(failures)
            self.stats["reconnects"] += 1
            log.info("websocket reconnecting", delay_s=round(delay, 3), failures=failures)
            await trio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        settings = self._settings
        base = min(settings.reconnect_max_s, settings.reconnect_base_s * 2.0 ** max(0, failures - 1))
        return base * (1 + settings.reconnect_jitter * self._rng.uniform(-1, 1))

    async def _one_connection(self) -> float:
        """Run one connection to its end; return how long it was LIVE (0 if it never was)."""
        epoch = self.status.value.epoch + 1
        self.status.set(Status(ConnectionState.CONNECTING, epoch))
        self._live_since = None
        try:
            async with trio.open_nursery() as nursery:
                ws = await self._connect(nursery)
                close_timeout_s = CLOSE_TIMEOUT_S
                try:
                    await self._serve(ws)
                except BaseException as exc:
                    if _only_cancelled(exc):
                        # Cancelled from outside: the socket's reader is cancelled too and cannot read the
                        # peer's answer, so send our close frame and do not wait for the handshake.
                        close_timeout_s = CANCELLED_CLOSE_TIMEOUT_S
                    raise
                finally:
                    # Close before cancelling: the socket's own reader runs in this nursery and must be alive
                    # to read the peer's closing handshake. Shielded for shutdown, bounded for a silent peer.
                    with trio.CancelScope(shield=True, deadline=trio.current_time() + close_timeout_s):
                        await ws.aclose()
                    nursery.cancel_scope.cancel()
        except* CONNECTION_ENDINGS as ended:
            reason = first_leaf(ended)
            self.stats["connections_lost"] += 1
            log.warning(
                "websocket connection ended", epoch=epoch, reason=str(reason) or type(reason).__name__
            )
        finally:
            self._outbound_send = None
            self.status.set(Status(ConnectionState.DISCONNECTED, epoch))
            self._fail_pending_posts()
        return 0.0 if self._live_since is None else trio.current_time() - self._live_since

    async def _connect(self, nursery: trio.Nursery) -> trio_websocket.WebSocketConnection:
        try:
            with trio.fail_after(self._settings.connect_timeout_s):
                return await self._connector(nursery)
        except trio.TooSlowError:
            raise _ConnectionLost(f"no connection within {self._settings.connect_timeout_s} s") from None

    async def _serve(self, ws: trio_websocket.WebSocketConnection) -> None:
        """Run reader, writer and heartbeat on one socket until one of them fails."""
        send, receive = trio.open_memory_channel[str](self._settings.outbound_queue_size)
        self._outbound_send = send
        self._acked = set()
        self._set_state(ConnectionState.SUBSCRIBING)
        for subscription in self._subscriptions.values():
            send.send_nowait(_subscribe_message(subscription))
        if not self._subscriptions:
            self._set_state(ConnectionState.LIVE)  # nothing to acknowledge
        async with trio.open_nursery() as tasks:
            tasks.start_soon(self._write, ws, receive)
            tasks.start_soon(self._read, ws)
            tasks.start_soon(self._heartbeat)
            await self._await_subscribed()

    async def _await_subscribed(self) -> None:
        with trio.move_on_after(self._settings.subscribe_timeout_s):
            await self.status.wait_for(lambda s: s.state is ConnectionState.LIVE)
            self._live_since = trio.current_time()
            return
        missing = sorted(str(key) for key in self._subscriptions.keys() - self._acked)
        raise _ConnectionLost(f"not acknowledged within {self._settings.subscribe_timeout_s} s: {missing}")

    def _set_state(self, state: ConnectionState) -> None:
        self.status.set(Status(state, self.status.value.epoch))

    # -- the three tasks of a connection ---------------------------------------------------------------

    async def _write(
        self, ws: trio_websocket.WebSocketConnection, outbound: trio.MemoryReceiveChannel[str]
    ) -> None:
        async for text in outbound:
            await self._budget.acquire(1)
            await ws.send_message(text)
            self._last_sent = trio.current_time()
            self.stats["sent"] += 1

    async def _read(self, ws: trio_websocket.WebSocketConnection) -> None:
        while True:
            message = await ws.get_message()
            received_at = trio.current_time()
            if self.raw_listeners:
                text = message if isinstance(message, str) else message.decode(errors="replace")
                for listener in self.raw_listeners:
                    listener(text, received_at)
            await self._dispatch(parse_frame(message), received_at)

    async def _heartbeat(self) -> None:
        """Ping after heartbeat_interval_s without a send; no pong in pong_timeout_s ends the connection."""
        settings = self._settings
        self._last_sent = trio.current_time()
        while True:
            await trio.sleep_until(self._last_sent + settings.heartbeat_interval_s)
            if trio.current_time() < self._last_sent + settings.heartbeat_interval_s:
                continue  # something was sent meanwhile
            self._pong = trio.Event()
            await self._send(PING)
            self.stats["pings"] += 1
            with trio.move_on_after(settings.pong_timeout_s):
                await self._pong.wait()
                continue
            raise _ConnectionLost(f"no pong within {settings.pong_timeout_s} s")

    async def _send(self, text: str) -> None:
        if self._outbound_send is None:
            raise WsUnavailable("the websocket is not connected")
        await self._outbound_send.send(text)

    # -- incoming frames -------------------------------------------------------------------------------

    async def _dispatch(self, frame: Frame, received_at: float) -> None:
        kind = type(frame)
        self.stats[kind.__name__] += 1
        if isinstance(frame, SubscriptionAck):
            self._on_ack(frame)
        elif isinstance(frame, Pong):
            self._pong.set()
        elif isinstance(frame, PostResponse):
            self._on_post_response(frame)
        elif isinstance(frame, Malformed | ErrorFrame):
            self._log_once(frame)
        elif not isinstance(frame, Greeting):
            for handler in self._handlers.get(kind, ()):
                handler(frame, received_at)
            for channel in self._routes.get(kind, ()):
                await channel.send(frame)

    def _on_ack(self, ack: SubscriptionAck) -> None:
        if ack.method != "subscribe" or ack.key not in self._subscriptions:
            return
        self._acked.add(ack.key)
        if (
            self._acked >= self._subscriptions.keys()
            and self.status.value.state is ConnectionState.SUBSCRIBING
        ):
            self._set_state(ConnectionState.LIVE)
            log.info("websocket live", epoch=self.status.value.epoch, subscriptions=len(self._subscriptions))

    def _log_once(self, frame: Malformed | ErrorFrame) -> None:
        kind = f"malformed:{frame.kind}" if isinstance(frame, Malformed) else f"error:{frame.text[:40]}"
        self.stats[kind] += 1
        if kind not in self._logged_kinds:
            self._logged_kinds.add(kind)
            detail = frame.reason if isinstance(frame, Malformed) else frame.text
            log.warning("websocket frame not understood", kind=kind, detail=detail[:200])

    # -- post requests ---------------------------------------------------------------------------------

    async def post(self, kind: Literal["info", "action"], payload: Mapping[str, Any]) -> PostResponse:
        """Send a post request and wait for its answer.

        Raises WsUnavailable at once when the socket is down (nothing was sent), PostOutcomeUnknown when no
        answer came within post_timeout_s (queueing included) or the connection dropped first: the request may
        have reached the exchange, so an action's effect must be reconciled.
        """
        if self.status.value.state not in (ConnectionState.SUBSCRIBING, ConnectionState.LIVE):
            raise WsUnavailable(f"the websocket is {self.status.value.state.value}")
        self._next_post_id += 1
        request_id = self._next_post_id
        request = {"method": "post", "id": request_id, "request": {"type": kind, "payload": payload}}
        pending = self._pending_posts[request_id] = _PendingPost()
        try:
            with trio.move_on_after(self._settings.post_timeout_s):
                async with self._inflight:
                    await self._send(json.dumps(request))
                    await pending.done.wait()
        finally:
            del self._pending_posts[request_id]
        if pending.response is None:
            self.stats["post_unknown"] += 1
            raise PostOutcomeUnknown(f"post {request_id} ({kind}) got no answer")
        return pending.response

    def _on_post_response(self, response: PostResponse) -> None:
        pending = self._pending_posts.get(response.request_id)
        if pending is None:
            self.stats["post_late"] += 1  # its caller already gave up
            return
        pending.response = response
        pending.done.set()

    def _fail_pending_posts(self) -> None:
        for pending in self._pending_posts.values():
            pending.done.set()  # response stays None: the caller raises PostOutcomeUnknown
