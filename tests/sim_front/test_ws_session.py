"""The simulator's WebSocket conversation, without a transport."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
import trio.testing

from hip3.sim.events import AssetCtxChanged, BookChanged, MidsChanged, OrderUpdated, TradesPrinted, UserFilled
from hip3.sim.ws_serve import FrameTiming
from hip3.sim.ws_session import GREETING, WsSession
from tests.sim_front.fake_exchange import BOOK, FakeExchange

USER = "0x14791697260e4c9a71f18484c9f997b308e59325"


def drain(session: WsSession) -> list[Any]:
    frames = []
    while True:
        try:
            text = session.outbox.receive_nowait()
        except trio.WouldBlock:
            return frames
        frames.append(text if text == GREETING else json.loads(text))


@pytest.fixture
def exchange() -> FakeExchange:
    return FakeExchange()


@pytest.fixture
def session(exchange: FakeExchange) -> WsSession:
    opened = WsSession(exchange)
    opened.open()
    assert drain(opened) == [GREETING]
    return opened


def subscribe(session: WsSession, subscription: dict[str, Any], method: str = "subscribe") -> list[Any]:
    session.on_text(json.dumps({"method": method, "subscription": subscription}))
    return drain(session)


def test_subscribe_is_acknowledged_then_snapshotted(session: WsSession) -> None:
    subscription = {"type": "l2Book", "coin": "xyz:TSLA"}
    assert subscribe(session, subscription) == [
        {"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": subscription}},
        {"channel": "l2Book", "data": BOOK},
    ]


def test_user_fills_snapshot_is_marked(session: WsSession) -> None:
    frames = subscribe(session, {"type": "userFills", "user": USER.upper().replace("0X", "0x")})
    assert frames[1] == {
        "channel": "userFills",
        "data": {"isSnapshot": True, "user": USER, "fills": [{"coin": "xyz:TSLA", "oid": 1}]},
    }


def test_order_updates_have_no_snapshot(session: WsSession) -> None:
    assert len(subscribe(session, {"type": "orderUpdates", "user": USER})) == 1


def test_duplicate_unknown_and_missing_subscriptions_are_error_frames(session: WsSession) -> None:
    bbo = {"type": "bbo", "coin": "xyz:TSLA"}
    subscribe(session, bbo)
    assert subscribe(session, bbo) == [
        {"channel": "error", "data": 'Already subscribed: {"type":"bbo","coin":"xyz:TSLA"}'}
    ]
    assert subscribe(session, {"type": "candles", "coin": "x"}) == [
        {"channel": "error", "data": 'Invalid subscription: {"type":"candles","coin":"x"}'}
    ]
    assert subscribe(session, {"type": "bbo"}) == [
        {"channel": "error", "data": 'Invalid subscription: {"type":"bbo"}'}
    ]
    assert subscribe(session, {"type": "trades", "coin": "BTC"}, "unsubscribe") == [
        {"channel": "error", "data": 'Already unsubscribed: {"type":"trades","coin":"BTC"}'}
    ]


def test_unsubscribe_stops_the_channel(session: WsSession, exchange: FakeExchange) -> None:
    subscription = {"type": "trades", "coin": "xyz:TSLA"}
    subscribe(session, subscription)
    assert subscribe(session, subscription, "unsubscribe") == [
        {"channel": "subscriptionResponse", "data": {"method": "unsubscribe", "subscription": subscription}}
    ]
    exchange.emit(TradesPrinted("xyz:TSLA", [{"px": "1"}]))
    assert drain(session) == []


@pytest.mark.parametrize(
    "text", ["not json", "[]", '{"method":"subscribe"}', '{"method":"post","id":"x"}', "{}"]
)
def test_malformed_requests_get_a_parse_error_frame(session: WsSession, text: str) -> None:
    session.on_text(text)
    assert drain(session) == [
        {"channel": "error", "data": f"Error parsing JSON into valid websocket request: {text}"}
    ]


def test_ping_gets_pong(session: WsSession) -> None:
    session.on_text('{"method":"ping"}')
    assert drain(session) == [{"channel": "pong"}]


def test_post_info_and_action_are_wrapped(session: WsSession) -> None:
    session.on_text(
        json.dumps({"method": "post", "id": 7, "request": {"type": "info", "payload": {"type": "l2Book"}}})
    )
    session.on_text(
        json.dumps({"method": "post", "id": 8, "request": {"type": "action", "payload": {"a": 1}}})
    )
    assert drain(session) == [
        {
            "channel": "post",
            "data": {"id": 7, "response": {"type": "info", "payload": {"type": "l2Book", "data": BOOK}}},
        },
        {
            "channel": "post",
            "data": {
                "id": 8,
                "response": {"type": "action", "payload": {"status": "ok", "response": {"type": "default"}}},
            },
        },
    ]


def test_post_that_fails_at_the_http_level_is_an_error_payload(session: WsSession) -> None:
    session.on_text(
        json.dumps({"method": "post", "id": 9, "request": {"type": "info", "payload": {"type": "meta"}}})
    )
    session.on_text(json.dumps({"method": "post", "id": 10, "request": {"type": "explorer", "payload": {}}}))
    assert drain(session) == [
        {"channel": "post", "data": {"id": 9, "response": {"type": "error", "payload": "500 None"}}},
        {
            "channel": "post",
            "data": {
                "id": 10,
                "response": {"type": "error", "payload": "400 unknown post request type 'explorer'"},
            },
        },
    ]


def test_events_reach_only_their_subscribers(session: WsSession, exchange: FakeExchange) -> None:
    for subscription in (
        {"type": "bbo", "coin": "xyz:TSLA"},
        {"type": "activeAssetCtx", "coin": "xyz:TSLA"},
        {"type": "allMids", "dex": "xyz"},
        {"type": "orderUpdates", "user": USER},
        {"type": "userFills", "user": USER},
    ):
        subscribe(session, subscription)
    bbo = {"coin": "xyz:TSLA", "time": 2, "bbo": [None, {"px": "431", "sz": "2", "n": 1}]}
    exchange.emit(BookChanged("xyz:TSLA", BOOK, bbo))  # no l2Book subscription: only the bbo
    exchange.emit(BookChanged("xyz:TSLA", BOOK, None))  # top unchanged: nothing
    exchange.emit(BookChanged("xyz:NVDA", BOOK, bbo))  # another coin: nothing
    exchange.emit(AssetCtxChanged("xyz:TSLA", {"coin": "xyz:TSLA", "ctx": {"oraclePx": "430"}}))
    exchange.emit(MidsChanged("xyz", {"xyz:TSLA": "430.5"}))
    exchange.emit(MidsChanged("", {"BTC": "1"}))
    exchange.emit(OrderUpdated(USER, {"status": "open"}))
    exchange.emit(OrderUpdated("0x0000000000000000000000000000000000000001", {"status": "open"}))
    exchange.emit(UserFilled(USER, {"oid": 2}))
    assert drain(session) == [
        {"channel": "bbo", "data": bbo},
        {"channel": "activeAssetCtx", "data": {"coin": "xyz:TSLA", "ctx": {"oraclePx": "430"}}},
        {"channel": "allMids", "data": {"mids": {"xyz:TSLA": "430.5"}}},
        {"channel": "orderUpdates", "data": [{"status": "open"}]},
        {"channel": "userFills", "data": {"user": USER, "fills": [{"oid": 2}]}},
    ]


def test_a_client_that_cannot_keep_up_is_marked_overflowed(exchange: FakeExchange) -> None:
    session = WsSession(exchange, outbox_size=3)
    session.open()
    for _ in range(5):
        session.on_text('{"method":"ping"}')
    assert session.overflowed.is_set()
    assert len(drain(session)) == 3


def test_close_removes_the_listener(session: WsSession, exchange: FakeExchange) -> None:
    session.close()
    assert exchange.listeners == []


async def test_a_frame_timing_listener_that_raises_is_counted_and_the_others_still_hear(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A broken measurement must not drop the session (the client would see only a lost connection)."""
    timing = FrameTiming()
    heard: list[str] = []

    def broken(text: str, now: float) -> None:
        raise KeyError(text)

    timing.sent += [broken, lambda text, now: heard.append(text)]
    timing.on_sent("one")
    timing.on_sent("two")
    timing.on_received("three")  # no listener there: nothing happens
    assert heard == ["one", "two"]
    assert timing.errors == 2 and isinstance(timing.first_error, KeyError)
