"""One client's WebSocket conversation with the simulated exchange, independent of the transport.

It answers subscribe/unsubscribe with `subscriptionResponse` acks or `error` frames, sends a snapshot where
the real server does, routes the exchange's events to the subscribed channels, answers `post` requests (info
and action) and pings. Outgoing frames go to a bounded outbox that the transport drains; a client too slow to
drain it is disconnected rather than letting memory grow.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import trio

from hip3.sim import errors_text
from hip3.sim.events import (
    AssetCtxChanged,
    BookChanged,
    MidsChanged,
    OrderUpdated,
    SimEvent,
    TradesPrinted,
    UserFilled,
)
from hip3.sim.transport_faults import TransportFaults

GREETING = "Websocket connection established."
OUTBOX_SIZE = 10_000
HTTP_OK = 200
HTTP_UNPROCESSABLE = 422
HTTP_TOO_MANY_REQUESTS = 429
# subscription type -> the keys that identify it (besides "type"), and the keys that must be present
SUBSCRIPTION_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "allMids": (("dex",), ()),
    "l2Book": (("coin",), ("coin",)),
    "bbo": (("coin",), ("coin",)),
    "trades": (("coin",), ("coin",)),
    "activeAssetCtx": (("coin",), ("coin",)),
    "orderUpdates": (("user",), ("user",)),
    "userFills": (("user",), ("user",)),
}

SubscriptionKey = tuple[str, str]  # (type, identifying value: coin, user or dex)


class ExchangeEndpoints(Protocol):
    def info(self, request: object) -> tuple[int, object]: ...
    def exchange(self, body: object) -> tuple[int, object]: ...
    def add_listener(self, listener: Callable[[SimEvent], None]) -> Callable[[], None]: ...


def http_post_reply(
    handle: Callable[[object], tuple[int, object]], body: bytes, faults: TransportFaults
) -> tuple[int, object]:
    """(status, body) of POST /info or /exchange over HTTP: 429 null while `rest_rate_limited` lasts, 422 with
    the node's text when `body` is not JSON, else `handle`'s answer. Both HTTP fronts render it."""
    if faults.take("rest_rate_limited"):
        return HTTP_TOO_MANY_REQUESTS, None
    try:
        payload = json.loads(body)
    except ValueError as exc:
        return HTTP_UNPROCESSABLE, f"{errors_text.DESERIALIZE_FAILURE}: {exc}"
    return handle(payload)


def _frame(channel: str, data: object) -> str:
    return json.dumps({"channel": channel, "data": data}, separators=(",", ":"))


def _subscription_key(subscription: dict[str, Any]) -> SubscriptionKey | None:
    kind = subscription.get("type")
    if kind not in SUBSCRIPTION_KEYS:
        return None
    identifying, required = SUBSCRIPTION_KEYS[kind]
    if any(not isinstance(subscription.get(key), str) for key in required):
        return None
    value = subscription.get(identifying[0], "")
    if not isinstance(value, str):
        return None
    return kind, value.lower() if kind in ("orderUpdates", "userFills") else value


class WsSession:
    def __init__(
        self,
        exchange: ExchangeEndpoints,
        *,
        faults: TransportFaults | None = None,
        delays: trio.Nursery | None = None,
        outbox_size: int = OUTBOX_SIZE,
    ) -> None:
        self._exchange = exchange
        self._faults = faults or TransportFaults()
        self._delays = delays  # where delayed frames wait; without it delays are not applied
        self._subscriptions: dict[SubscriptionKey, dict[str, Any]] = {}
        self.outbox_send, self.outbox = trio.open_memory_channel[str](outbox_size)
        self.overflowed = trio.Event()
        self._remove_listener: Callable[[], None] | None = None

    def open(self) -> None:
        self._send_raw(GREETING)
        self._remove_listener = self._exchange.add_listener(self.on_event)

    def close(self) -> None:
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        self.outbox_send.close()

    # -- client frames --------------------------------------------------------------------------------

    def on_text(self, text: str) -> None:
        message = _json_object(text)
        method = message.get("method")
        subscription, request, request_id = (
            message.get("subscription"),
            message.get("request"),
            message.get("id"),
        )
        if method == "ping":
            self._send("pong", None, with_data=False)
        elif method in ("subscribe", "unsubscribe") and isinstance(subscription, dict):
            self._on_subscription(method, subscription)
        elif method == "post" and type(request_id) is int and isinstance(request, dict):
            self._on_post(request_id, request)
        else:
            self._send("error", f"Error parsing JSON into valid websocket request: {text}")

    def _on_subscription(self, method: str, subscription: dict[str, Any]) -> None:
        key = _subscription_key(subscription)
        rendered = json.dumps(subscription, separators=(",", ":"))
        if key is None:
            self._send("error", f"Invalid subscription: {rendered}")
            return
        subscribed = key in self._subscriptions
        if method == "subscribe" and subscribed:
            self._send("error", f"Already subscribed: {rendered}")
            return
        if method == "unsubscribe" and not subscribed:
            self._send("error", f"Already unsubscribed: {rendered}")
            return
        if method == "subscribe":
            self._subscriptions[key] = subscription
        else:
            del self._subscriptions[key]
        self._send("subscriptionResponse", {"method": method, "subscription": subscription})
        if method == "subscribe":
            self._send_snapshot(key)

    def _send_snapshot(self, key: SubscriptionKey) -> None:
        kind, value = key
        if kind == "l2Book":
            status, book = self._exchange.info({"type": "l2Book", "coin": value})
            if status == HTTP_OK and book is not None:
                self._send("l2Book", book)
        elif kind == "allMids":
            status, mids = self._exchange.info({"type": "allMids", "dex": value})
            if status == HTTP_OK:
                self._send("allMids", {"mids": mids})
        elif kind == "userFills":
            status, fills = self._exchange.info({"type": "userFills", "user": value})
            if status == HTTP_OK and isinstance(fills, list):
                self._send("userFills", {"isSnapshot": True, "user": value, "fills": fills})

    def _on_post(self, request_id: int, request: dict[str, Any]) -> None:
        kind, payload = request.get("type"), request.get("payload")
        if kind == "info":
            status, body = self._exchange.info(payload)
            info_payload = {"type": _info_type(payload), "data": body}
            response: dict[str, Any] = {"type": "info", "payload": info_payload}
        elif kind == "action":
            status, body = self._exchange.exchange(payload)
            response = {"type": "action", "payload": body}
        else:
            status, body = 400, f"unknown post request type {kind!r}"
        if status != HTTP_OK:
            response = {"type": "error", "payload": f"{status} {body}"}
        if self._faults.take("drop_post_responses"):
            return
        self._send(
            "post", {"id": request_id, "response": response}, delay_s=self._faults.post_response_delay_s
        )

    # -- exchange events ------------------------------------------------------------------------------

    def on_event(self, event: SimEvent) -> None:
        match event:
            case BookChanged(coin=coin, book=book, bbo=bbo):
                if ("l2Book", coin) in self._subscriptions:
                    self._send("l2Book", book)
                if bbo is not None and ("bbo", coin) in self._subscriptions:
                    self._send("bbo", bbo)
            case TradesPrinted(coin=coin, trades=trades) if ("trades", coin) in self._subscriptions:
                self._send("trades", trades)
            case AssetCtxChanged(coin=coin, ctx=ctx) if ("activeAssetCtx", coin) in self._subscriptions:
                self._send("activeAssetCtx", ctx)
            case MidsChanged(dex=dex, mids=mids) if ("allMids", dex) in self._subscriptions:
                self._send("allMids", {"mids": mids})
            case OrderUpdated(user=user, update=update) if ("orderUpdates", user) in self._subscriptions:
                if not self._faults.take("drop_order_updates"):
                    self._send("orderUpdates", [update])
            case UserFilled(user=user, fill=fill) if ("userFills", user) in self._subscriptions:
                self._send_user_fill(user, fill)
            case _:
                pass

    def _send_user_fill(self, user: str, fill: dict[str, Any]) -> None:
        copies = 2 if self._faults.take("duplicate_user_fills") else 1
        for _ in range(copies):
            self._send("userFills", {"user": user, "fills": [fill]}, delay_s=self._faults.user_fills_delay_s)

    # -- outbox ---------------------------------------------------------------------------------------

    def _send(self, channel: str, data: object, *, with_data: bool = True, delay_s: float = 0.0) -> None:
        text = _frame(channel, data) if with_data else json.dumps({"channel": channel})
        if delay_s > 0 and self._delays is not None:
            self._delays.start_soon(self._send_later, delay_s, text)
        else:
            self._send_raw(text)

    async def _send_later(self, delay_s: float, text: str) -> None:
        await trio.sleep(delay_s)
        self._send_raw(text)

    def _send_raw(self, text: str) -> None:
        if self.overflowed.is_set():
            return
        try:
            self.outbox_send.send_nowait(text)
        except trio.WouldBlock:
            self.overflowed.set()
        except trio.ClosedResourceError:
            pass


def _json_object(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def _info_type(payload: object) -> object:
    return payload.get("type") if isinstance(payload, dict) else None
