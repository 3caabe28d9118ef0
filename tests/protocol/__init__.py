"""Protocol parsing tests; real frames come from the simulated exchange's WebSocket session."""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from typing import Any

import trio

from hip3.core.order import Cloid, Side, Tif
from hip3.protocol.actions import OrderRequest, order_action
from hip3.sim.ws_session import WsSession
from tests.sim import TSLA, USER, Harness

TSLA_COIN = "xyz:TSLA"
MIXED_CASE_USER = "0x" + USER[2:].upper()
SUBSCRIPTIONS: tuple[dict[str, Any], ...] = (
    {"type": "bbo", "coin": TSLA_COIN},
    {"type": "l2Book", "coin": TSLA_COIN},
    {"type": "trades", "coin": TSLA_COIN},
    {"type": "activeAssetCtx", "coin": TSLA_COIN},
    {"type": "allMids", "dex": "xyz"},
    {"type": "orderUpdates", "user": MIXED_CASE_USER},
    {"type": "userFills", "user": USER},
)


@functools.cache
def sim_frames() -> tuple[str, ...]:
    """Every text frame one session of the simulator sends for a short trading story, in order.

    Subscribes to every channel the bot uses, fills an IOC, rests a GTC with a cloid, moves the oracle, posts
    an action and an info request over the socket, pings, sends one unparseable request, and unsubscribes.
    """
    harness = Harness()
    harness.quotes(TSLA_COIN, [("429.9", "1")], [("430.1", "1")])
    session = WsSession(harness.sim)
    session.open()
    for subscription in SUBSCRIPTIONS:
        session.on_text(json.dumps({"method": "subscribe", "subscription": subscription}))
    harness.order(TSLA, Side.BUY, "431", "0.1", Tif.IOC)
    harness.order(TSLA, Side.BUY, "429", "0.1", cloid=Cloid.from_int(0xAA))
    harness.sim.set_oracle(TSLA_COIN, Decimal(431))
    ioc = OrderRequest(TSLA, Side.BUY, Decimal(431), Decimal("0.1"), Tif.IOC)
    action = {"type": "action", "payload": harness.signed(order_action([ioc]))}
    info = {"type": "info", "payload": {"type": "l2Book", "coin": TSLA_COIN}}
    session.on_text(json.dumps({"method": "post", "id": 7, "request": action}))
    session.on_text(json.dumps({"method": "post", "id": 8, "request": info}))
    session.on_text(json.dumps({"method": "ping"}))
    session.on_text("nonsense")
    session.on_text(json.dumps({"method": "unsubscribe", "subscription": SUBSCRIPTIONS[0]}))
    return tuple(_drain(session))


def _drain(session: WsSession) -> list[str]:
    frames = []
    while True:
        try:
            frames.append(session.outbox.receive_nowait())
        except trio.WouldBlock:
            return frames


def sim_frames_on(channel: str) -> list[dict[str, Any]]:
    """The decoded simulator frames of one channel."""
    decoded = [json.loads(text) for text in sim_frames()[1:]]
    return [frame for frame in decoded if frame["channel"] == channel]
