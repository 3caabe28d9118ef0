"""Hostile input (issue 9): malformed, truncated, reordered and hostile frames and responses.

Three levels, all property-based (hypothesis):
1. the protocol parsers return a typed value for any input, never an unexpected exception;
2. a WebSocket connection fed hostile frames between valid ones stays LIVE, counts them, and only the valid
   frames reach the market state;
3. a trading bot against the in-memory simulator, with hostile user frames and post responses injected into
   its socket, keeps running, places no order because of them, counts no fill twice, and its positions equal
   the exchange's ledger.

`HIP3_FUZZ_EXAMPLES` scales the number of examples (default: a few seconds in `make test`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import trio
import trio.testing
import trio_websocket
from hypothesis import HealthCheck, given, settings

from hip3.app import Running, Transports, run_bot
from hip3.config import parse_config
from hip3.core.clock import trio_wall_clock
from hip3.market.feed import MarketFeed, run_feed
from hip3.net.ws import ConnectionState, WsConnection, WsSettings
from hip3.persist.jsonl import run_inline
from hip3.protocol.messages import (
    AllMids,
    AssetCtx,
    Bbo,
    ErrorFrame,
    ExchangeErr,
    ExchangeMalformed,
    ExchangeOk,
    Filled,
    Greeting,
    L2Book,
    Malformed,
    OrderError,
    OrderState,
    OrderUpdates,
    Pong,
    PostResponse,
    Resting,
    SubscriptionAck,
    Success,
    Trades,
    UserFills,
    Waiting,
    classify_order_status,
    parse_exchange_response,
    parse_fill_list,
    parse_frame,
)
from hip3.sim.harness import WALL_START_MS, MemorySim, run_memory_sim
from hip3.sim.scenario_file import parse_scenario
from tests.net.scripted_ws_server import ScriptedServer
from tests.test_observation import SCENARIO
from tests.test_trading import KEY, KEY_HEX, config_text

SCALE = max(1, int(os.environ.get("HIP3_FUZZ_EXAMPLES", "1")))
FAST = settings(max_examples=300 * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=8 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))

FRAME_TYPES = (
    Greeting,
    Pong,
    SubscriptionAck,
    ErrorFrame,
    PostResponse,
    Bbo,
    L2Book,
    AssetCtx,
    AllMids,
    Trades,
    OrderUpdates,
    UserFills,
    Malformed,
)
USER = "0x14791697260e4c9a71f18484c9f997b308e59325"
CLOID = "0x0123456789abcdef0123456789abcdef"
TSLA = "xyz:TSLA"

# ------------------------------------------------------------------------------------------ valid frames


def level(px: str, sz: str = "1.5", n: int = 2) -> dict[str, Any]:
    return {"px": px, "sz": sz, "n": n}


def bbo_frame(coin: str, bid: str, ask: str, time_ms: int = 1_700_000_000_000) -> dict[str, Any]:
    return {"channel": "bbo", "data": {"coin": coin, "time": time_ms, "bbo": [level(bid), level(ask)]}}


ORDER = {
    "coin": TSLA,
    "side": "B",
    "limitPx": "430.5",
    "sz": "0.0",
    "origSz": "0.1",
    "oid": 77,
    "cloid": CLOID,
    "timestamp": 1_700_000_000_000,
}
FILL = {
    "coin": TSLA,
    "px": "430.5",
    "sz": "0.1",
    "side": "B",
    "time": 1_700_000_000_001,
    "startPosition": "0.0",
    "dir": "Open Long",
    "closedPnl": "0.0",
    "hash": "0xabc",
    "oid": 77,
    "crossed": True,
    "fee": "0.01",
    "tid": 991,
    "feeToken": "USDC",
    "cloid": CLOID,
}
EXCHANGE_OK = {
    "status": "ok",
    "response": {
        "type": "order",
        "data": {
            "statuses": [
                {"resting": {"oid": 77, "cloid": CLOID}},
                {"filled": {"totalSz": "0.1", "avgPx": "430.5", "oid": 78}},
                {"error": "Order must have minimum value of $10."},
                "success",
                "waitingForFill",
            ]
        },
    },
}
VALID_FRAMES: list[dict[str, Any]] = [
    bbo_frame(TSLA, "430.1", "430.9"),
    {"channel": "bbo", "data": {"coin": TSLA, "time": 5, "bbo": [None, level("1")]}},
    {
        "channel": "l2Book",
        "data": {"coin": TSLA, "time": 5, "levels": [[level("1"), level("0.9")], [level("1.1")]]},
    },
    {
        "channel": "activeAssetCtx",
        "data": {
            "coin": TSLA,
            "ctx": {
                "oraclePx": "430",
                "markPx": "430.2",
                "midPx": "430.1",
                "openInterest": "100",
                "funding": "0.0001",
                "premium": None,
                "dayNtlVlm": "1000",
                "prevDayPx": "420",
                "impactPxs": ["430.0", "430.3"],
            },
        },
    },
    {"channel": "allMids", "data": {"mids": {TSLA: "430.1", "xyz:NVDA": "120"}}},
    {
        "channel": "trades",
        "data": [
            {
                "coin": TSLA,
                "side": "A",
                "px": "430",
                "sz": "1",
                "time": 5,
                "tid": 1,
                "hash": "0x1",
                "users": [USER, USER.upper()],
            }
        ],
    },
    {
        "channel": "orderUpdates",
        "data": [{"order": ORDER, "status": "filled", "statusTimestamp": 1_700_000_000_002}],
    },
    {"channel": "userFills", "data": {"user": USER, "isSnapshot": False, "fills": [FILL, FILL]}},
    {"channel": "post", "data": {"id": 3, "response": {"type": "action", "payload": EXCHANGE_OK}}},
    {
        "channel": "subscriptionResponse",
        "data": {"method": "subscribe", "subscription": {"type": "bbo", "coin": TSLA}},
    },
    {"channel": "pong"},
    {"channel": "error", "data": "Invalid subscription"},
]

# ------------------------------------------------------------------------------------------ hostile values

HOSTILE_SCALARS = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        -1,
        2**63,
        -(2**64) + 5,
        1.5,
        -0.0,
        1e308,
        "",
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "1e999999999",
        "-1e999999999",
        "1e-999999999",
        "-5",
        "0",
        "-0",
        "0x",
        "1_000",
        " 1 ",
        "١٢٣",  # Arabic-Indic digits: Decimal accepts them
        "\u0000",
        "𝟙𝟚",
        "B",
        "A",
        "Z",
        CLOID.upper(),
        CLOID + "0",
        "0x" + "g" * 32,
        "x" * 10_000,
    ]
)
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64) + 1, max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | HOSTILE_SCALARS
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=25,
)


def deeply_nested(depth: int) -> Any:
    value: Any = "1"
    for _ in range(depth):
        value = [value]
    return value


HOSTILE_VALUES = HOSTILE_SCALARS | JSON_VALUES | st.integers(1, 1000).map(deeply_nested)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (the root excluded)."""
    found = []
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return []
    for key, child in items:
        found.append((*prefix, key))
        found.extend(paths(child, (*prefix, key)))
    return found


def get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def mutated(draw: st.DrawFn, documents: list[Any]) -> Any:
    """A valid document with 1..4 mutations: a value replaced, a key dropped, two swapped, a key added."""
    doc = json.loads(json.dumps(draw(st.sampled_from(documents))))
    for _ in range(draw(st.integers(1, 4))):
        all_paths = paths(doc)
        if not all_paths:
            break
        path = draw(st.sampled_from(all_paths))
        parent = get(doc, path[:-1])
        action = draw(st.sampled_from(["replace", "drop", "swap", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(HOSTILE_VALUES)
        elif action == "drop":
            del parent[path[-1]]
        elif action == "swap":
            other = draw(st.sampled_from(all_paths))
            if other[: len(path)] != path and path[: len(other)] != other:  # neither holds the other
                other_parent = get(doc, other[:-1])
                parent[path[-1]], other_parent[other[-1]] = other_parent[other[-1]], parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(HOSTILE_VALUES)
        else:
            parent.insert(draw(st.integers(0, len(parent))), draw(HOSTILE_VALUES))
    return doc


def truncated(text: str) -> st.SearchStrategy[str]:
    return st.integers(0, max(0, len(text) - 1)).map(lambda cut: text[:cut])


VALID_TEXTS = [json.dumps(frame) for frame in VALID_FRAMES]
HOSTILE_FRAME_TEXTS = (
    st.text(max_size=200)
    | JSON_VALUES.map(json.dumps)
    | mutated(VALID_FRAMES).map(json.dumps)
    | st.sampled_from(VALID_TEXTS).flatmap(truncated)
    | mutated(VALID_FRAMES).map(json.dumps).flatmap(truncated)
    | st.integers(1, 1100).map(lambda depth: '{"channel":"bbo","data":' + "[" * depth + "]" * depth + "}")
    | st.sampled_from(VALID_TEXTS).map(lambda t: t.replace('"', "'"))
)

# ------------------------------------------------------------------------------------------ 1. parsers


def check_frame(frame: Any) -> None:
    """A parsed frame is one of the documented types and holds only what the parser promises."""
    assert isinstance(frame, FRAME_TYPES), frame
    if isinstance(frame, Malformed):
        assert isinstance(frame.kind, str) and isinstance(frame.reason, str)
        assert len(frame.kind) <= len("unknown-channel:") + 64
    for value in decimals_of(frame):
        assert value.is_finite(), frame


def decimals_of(value: Any) -> list[Decimal]:
    if isinstance(value, Decimal):
        return [value]
    if isinstance(value, tuple | list):
        return [d for item in value for d in decimals_of(item)]
    if isinstance(value, dict):
        return [d for item in value.values() for d in decimals_of(item)]
    slots = getattr(type(value), "__attrs_attrs__", None)
    if slots is None:
        return []
    return [d for attribute in slots for d in decimals_of(getattr(value, attribute.name))]


def test_every_valid_template_parses_to_its_type() -> None:
    for text in VALID_TEXTS:
        frame = parse_frame(text)
        assert not isinstance(frame, Malformed), (text, frame)
        check_frame(frame)
    assert isinstance(parse_exchange_response(EXCHANGE_OK), ExchangeOk)


@FAST
@given(HOSTILE_FRAME_TEXTS)
def test_parse_frame_returns_a_typed_value_for_any_text(text: str) -> None:
    check_frame(parse_frame(text))
    check_frame(parse_frame(text.encode("utf-8", errors="surrogatepass")))


@FAST
@given(st.binary(max_size=300))
def test_parse_frame_returns_a_typed_value_for_any_bytes(data: bytes) -> None:
    check_frame(parse_frame(data))


@FAST
@given(mutated(VALID_FRAMES))
def test_a_mutated_user_frame_counts_what_it_skips(doc: Any) -> None:
    frame = parse_frame(json.dumps(doc))
    check_frame(frame)
    if isinstance(frame, OrderUpdates | UserFills):
        elements = frame.updates if isinstance(frame, OrderUpdates) else frame.fills
        raw = doc["data"] if isinstance(frame, OrderUpdates) else doc["data"]["fills"]
        raw = raw if isinstance(raw, list) else [raw]
        assert len(elements) + frame.malformed == len(raw)
        assert frame.malformed >= 0


EXCHANGE_BODIES = (
    JSON_VALUES
    | mutated([EXCHANGE_OK, {"status": "err", "response": "User or API Wallet does not exist."}])
    | st.text(max_size=100)
    | st.binary(max_size=100)
    | st.sampled_from([json.dumps(EXCHANGE_OK)]).flatmap(truncated)
)
STATUS_TYPES = (Resting, Filled, OrderError, Success, Waiting)


@FAST
@given(EXCHANGE_BODIES)
def test_parse_exchange_response_returns_a_typed_value_for_any_body(body: Any) -> None:
    response = parse_exchange_response(body)
    assert isinstance(response, ExchangeOk | ExchangeErr | ExchangeMalformed)
    if isinstance(response, ExchangeOk):
        assert all(isinstance(status, STATUS_TYPES) for status in response.statuses)
        for status in response.statuses:
            if isinstance(status, Filled):
                assert status.total_sz.is_finite() and status.avg_px.is_finite()
            if isinstance(status, Resting | Filled):
                assert type(status.oid) is int
    if isinstance(response, ExchangeErr | OrderError):
        assert isinstance(response.text, str)


@FAST
@given(st.text(max_size=40) | st.sampled_from(["open", "filled", "canceled", "xRejected", "xCancel"]))
def test_classify_order_status_maps_any_word_to_a_state(status: str) -> None:
    state, known = classify_order_status(status)
    assert isinstance(state, OrderState) and isinstance(known, bool)
    if not known:
        assert state is OrderState.CANCELLED  # an unknown word ends the order, never leaves it pending


@FAST
@given(JSON_VALUES | st.lists(mutated([FILL]), max_size=5) | mutated([[FILL, FILL]]))
def test_parse_fill_list_returns_a_typed_value_for_any_list(raw: Any) -> None:
    fills = parse_fill_list(USER.upper(), raw)
    assert isinstance(fills, UserFills) and fills.user == USER and not fills.is_snapshot
    assert len(fills.fills) + fills.malformed == (len(raw) if isinstance(raw, list) else 1)
    check_frame(fills)


# ------------------------------------------------------------------------------------------ 2. connection


class FeedServer(ScriptedServer):
    """The scripted peer, plus frames the test pushes once every subscription is acknowledged."""

    def __init__(self, nursery: trio.Nursery) -> None:
        super().__init__(nursery)
        self.push, self._pushed = trio.open_memory_channel[str](1000)

    async def _answer(self, ws: trio_websocket.WebSocketConnection, text: str | bytes) -> None:
        await super()._answer(ws, text)
        if json.loads(text).get("method") == "subscribe" and not getattr(self, "_pumping", False):
            self._pumping = True
            self.nursery.start_soon(self._pump, ws)

    async def _pump(self, ws: trio_websocket.WebSocketConnection) -> None:
        async for frame in self._pushed:
            await ws.send_message(frame)


PRICES = st.sampled_from(["430.1", "430.9", "0", "-1", "1e999999999", "1E-999999999", "0.000001", "99999"])
BBO_FRAMES = st.builds(
    lambda bid, ask, time_ms: json.dumps(bbo_frame(TSLA, bid, ask, time_ms)),
    PRICES,
    PRICES,
    st.integers(0, 2**53),
)


def bbo_fields(feed: MarketFeed) -> tuple[Any, ...]:
    state = feed.states[TSLA]
    return (state.bid_px, state.bid_sz, state.ask_px, state.ask_sz, state.bbo_exchange_ms, state.frames)


def market_spec() -> Any:
    from hip3.core.market import MarketKey, MarketSpec  # noqa: PLC0415 - only this level needs it

    return MarketSpec(name=TSLA, key=MarketKey("xyz", 1, 0), sz_decimals=3, max_leverage=10)


@SLOW
@given(st.lists(st.tuples(st.booleans(), HOSTILE_FRAME_TEXTS, BBO_FRAMES), min_size=1, max_size=25))
def test_the_connection_stays_live_counts_hostile_frames_and_applies_only_valid_bbos(
    script: list[tuple[bool, str, str]],
) -> None:
    frames = [bbo if valid else hostile for valid, hostile, bbo in script]
    trio.run(_connection_scenario, frames, clock=trio.testing.MockClock(autojump_threshold=0))


async def _connection_scenario(frames: list[str]) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = FeedServer(nursery)
            connection = WsConnection(server.connect, WsSettings(reconnect_jitter=0))
            feed = MarketFeed({TSLA: market_spec()})
            await nursery.start(run_feed, connection, feed)
            await nursery.start(connection.run)
            await connection.wait_live()
            malformed = 0
            for text in frames:
                before = bbo_fields(feed)
                parsed = parse_frame(text)
                await server.push.send(text)
                await trio.testing.wait_all_tasks_blocked()
                after = bbo_fields(feed)
                state = feed.states[TSLA]
                if isinstance(parsed, Bbo) and parsed.coin == TSLA:
                    assert after[-1] == before[-1] + 1
                    assert state.bid_px == (parsed.bid.px if parsed.bid else None)
                    assert state.ask_px == (parsed.ask.px if parsed.ask else None)
                    # a crossed or one-sided book is recorded as it is and never called valid
                    valid = (
                        parsed.bid is not None and parsed.ask is not None and parsed.bid.px < parsed.ask.px
                    )
                    assert state.bbo_valid == valid
                elif not isinstance(parsed, AssetCtx) or parsed.coin != TSLA:
                    assert after == before, (text, parsed)
                malformed += isinstance(parsed, Malformed)
            assert connection.stats["Malformed"] == malformed
            malformed_kinds = sum(v for k, v in connection.stats.items() if k.startswith("malformed:"))
            assert malformed_kinds == malformed
            assert connection.status.value.state is ConnectionState.LIVE
            assert connection.status.value.epoch == 1 and connection.stats["connections_lost"] == 0
            nursery.cancel_scope.cancel()


# ------------------------------------------------------------------------------------------ 3. the bot


class InjectingWs:
    """A client socket that passes the simulator's frames through and lets the test slip its own in."""

    def __init__(self, inner: trio_websocket.WebSocketConnection, nursery: trio.Nursery) -> None:
        self._inner = inner
        self._send, self._receive = trio.open_memory_channel[str | bytes](1000)
        self._ended: BaseException | None = None
        self.seen: list[str] = []
        nursery.start_soon(self._pump)

    async def _pump(self) -> None:
        try:
            while True:
                message = await self._inner.get_message()
                self.seen.append(message if isinstance(message, str) else message.decode())
                await self._send.send(message)
        except trio_websocket.ConnectionClosed as exc:
            self._ended = exc
            await self._send.aclose()

    def inject(self, text: str) -> None:
        self._send.send_nowait(text)

    async def get_message(self) -> str | bytes:
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            assert self._ended is not None
            raise self._ended from None

    async def send_message(self, message: str | bytes) -> None:
        await self._inner.send_message(message)

    async def aclose(self, *args: Any, **kwargs: Any) -> None:
        await self._inner.aclose(*args, **kwargs)


class Injector:
    def __init__(self, connect: Callable[..., Any]) -> None:
        self._connect = connect
        self.sockets: list[InjectingWs] = []

    async def connect(self, nursery: trio.Nursery) -> Any:
        socket = InjectingWs(await self._connect(nursery), nursery)
        self.sockets.append(socket)
        return socket

    def inject(self, text: str) -> None:
        self.sockets[-1].inject(text)


def user_frames(user: str) -> list[dict[str, Any]]:
    unknown_order = {**ORDER, "oid": 123_456_789, "cloid": "0x" + "ab" * 16}
    unknown_fill = {**FILL, "oid": 123_456_789, "tid": 555_555, "cloid": None}
    return [
        {"channel": "orderUpdates", "data": [{"order": unknown_order, "status": s, "statusTimestamp": 1}]}
        for s in ("open", "filled", "canceled", "marginCanceled", "weird")
    ] + [
        {"channel": "userFills", "data": {"user": user, "isSnapshot": True, "fills": [unknown_fill]}},
        {"channel": "post", "data": {"id": 999_999, "response": {"type": "action", "payload": EXCHANGE_OK}}},
        {"channel": "post", "data": {"id": 0, "response": {"type": "error", "payload": "nope"}}},
    ]


def hostile_user_texts(user: str) -> st.SearchStrategy[str]:
    templates = user_frames(user)
    malformed_user = (
        mutated([templates[0], templates[5], VALID_FRAMES[7]])
        .map(json.dumps)
        .filter(lambda text: isinstance(parse_frame(text), Malformed))
    )
    return (
        st.sampled_from([json.dumps(t) for t in templates])
        | malformed_user
        | st.sampled_from([json.dumps(t) for t in templates]).flatmap(truncated)
        | BBO_FRAMES.filter(lambda text: "1e999999999" not in text.lower())
    )


def hostile_sequences(user: str) -> st.SearchStrategy[list[str]]:
    return st.lists(hostile_user_texts(user), min_size=1, max_size=15)


@SLOW
@given(st.data())
def test_a_trading_bot_ignores_hostile_user_frames_and_post_responses(data: Any) -> None:
    frames = data.draw(hostile_sequences(KEY.address))
    with tempfile.TemporaryDirectory() as data_dir:
        trio.run(
            _quiet_bot_scenario, Path(data_dir), frames, clock=trio.testing.MockClock(autojump_threshold=0)
        )


async def start_bot(nursery: trio.Nursery, data_dir: Path) -> tuple[MemorySim, Running, Injector]:
    sim: MemorySim = await nursery.start(
        lambda task_status: run_memory_sim(
            parse_scenario(SCENARIO, source="test"),
            fund=[(KEY.address, Decimal(10_000))],
            task_status=task_status,
        )
    )
    injector = Injector(sim.ws_server.connect)
    cfg = parse_config(config_text(data_dir), source="test")
    running: Running = await nursery.start(
        lambda task_status: run_bot(
            cfg,
            transports=Transports(http=sim.http_transport, ws_connector=injector.connect),
            wall_ms=trio_wall_clock(WALL_START_MS),
            disk_writes=run_inline,
            environ={"HIP3_TRADING_KEY": KEY_HEX},
            task_status=task_status,
        )
    )
    return sim, running, injector


def fills_applied(stats: Any) -> int:
    return sum(v for k, v in stats.items() if k.startswith("fills_applied_"))


async def _quiet_bot_scenario(data_dir: Path, frames: list[str]) -> None:
    """No signal ever comes: any order or position could only come from the injected frames."""
    with trio.fail_after(300):
        async with trio.open_nursery() as nursery:
            sim, running, injector = await start_bot(nursery, data_dir)
            desk = running.desk
            assert desk is not None
            await trio.sleep(16.5)  # baselines learned, positions synced
            stats_before = running.ws.stats.copy()
            for text in frames:
                injector.inject(text)
                await trio.sleep(0.2)
            await trio.sleep(5)
            await desk.tracker.handle.settled()
            malformed = sum(isinstance(parse_frame(text), Malformed) for text in frames)
            assert running.ws.stats["Malformed"] - stats_before["Malformed"] == malformed
            assert running.ws.status.value.state is ConnectionState.LIVE
            assert running.ws.status.value.epoch == 1
            audit: Any = sim.exchange.audit(KEY.address)
            assert audit["orders"] == 0 and audit["fills"] == 0  # nothing was placed because of them
            assert dict(desk.tracker.handle.positions) == {}
            assert fills_applied(desk.tracker.stats) == 0
            assert desk.tracker.handle.pending_orders() == []
            assert not desk.hard_stop.reason()
            nursery.cancel_scope.cancel()
