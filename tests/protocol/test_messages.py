"""WebSocket frames into typed values: real simulator frames, the predecessor's W-series, hostile input."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hip3.core.order import Cloid, Side
from hip3.protocol.messages import (
    GREETING_TEXT,
    AllMids,
    AssetCtx,
    Bbo,
    ErrorFrame,
    ExchangeErr,
    ExchangeOk,
    Filled,
    Frame,
    Greeting,
    L2Book,
    Level,
    Malformed,
    OrderError,
    OrderUpdates,
    Pong,
    PostResponse,
    Resting,
    SubscriptionAck,
    Trades,
    UserFills,
    parse_exchange_response,
    parse_frame,
    parse_l2_book_answer,
    subscription_key,
)
from tests.protocol import MIXED_CASE_USER, SUBSCRIPTIONS, TSLA_COIN, sim_frames, sim_frames_on
from tests.sim import USER

D = Decimal
CLOID_TEXT = "0x000000000000000000000000000000aa"
EXPECTED_TYPES: dict[str, type] = {
    "subscriptionResponse": SubscriptionAck,
    "l2Book": L2Book,
    "bbo": Bbo,
    "trades": Trades,
    "activeAssetCtx": AssetCtx,
    "allMids": AllMids,
    "orderUpdates": OrderUpdates,
    "userFills": UserFills,
    "post": PostResponse,
    "pong": Pong,
    "error": ErrorFrame,
}


def frame(channel: str, data: Any) -> str:
    return json.dumps({"channel": channel, "data": data})


def parsed(channel: str, data: Any) -> Frame:
    return parse_frame(frame(channel, data))


def first_on(channel: str) -> dict[str, Any]:
    return sim_frames_on(channel)[0]


# ----------------------------------------------------------------------------------------------- real frames


def test_every_simulator_frame_parses_to_its_type() -> None:
    texts = sim_frames()
    assert parse_frame(texts[0]) == Greeting()
    channels = set()
    for text in texts[1:]:
        channel = json.loads(text)["channel"]
        channels.add(channel)
        assert type(parse_frame(text)) is EXPECTED_TYPES[channel], text
    assert channels == set(EXPECTED_TYPES)


def test_bytes_frames_parse_like_text() -> None:
    for text in sim_frames():
        assert parse_frame(text.encode()) == parse_frame(text)


def test_greeting_is_a_plain_text_frame() -> None:
    assert parse_frame(GREETING_TEXT) == Greeting()
    assert parse_frame(b"Websocket connection established.") == Greeting()
    assert parse_frame("Websocket connection established!").kind == "json"  # type: ignore[union-attr]


def test_pong() -> None:
    assert parse_frame('{"channel":"pong"}') == Pong()


def test_bbo_from_the_simulator() -> None:
    assert parse_frame(json.dumps(first_on("bbo"))) == Bbo(
        TSLA_COIN, 1_767_225_600_000, Level(D("429.9"), D(1), 1), Level(D("430.1"), D("0.9"), 1)
    )


@pytest.mark.parametrize("side", [0, 1])
def test_bbo_with_a_missing_side_has_none_there(side: int) -> None:
    data = first_on("bbo")["data"]
    data["bbo"][side] = None
    bbo = parsed("bbo", data)
    assert isinstance(bbo, Bbo)
    assert (bbo.bid, bbo.ask)[side] is None
    assert (bbo.bid, bbo.ask)[1 - side] is not None


def test_bbo_with_both_sides_missing() -> None:
    assert parsed("bbo", {"coin": "xyz:X", "time": 5, "bbo": [None, None]}) == Bbo("xyz:X", 5, None, None)


def test_l2_book_from_the_simulator() -> None:
    book = parse_frame(json.dumps(sim_frames_on("l2Book")[-1]))
    assert book == L2Book(
        TSLA_COIN,
        1_767_225_600_000,
        (Level(D("429.9"), D(1), 1), Level(D(429), D("0.1"), 1)),
        (Level(D("430.1"), D("0.8"), 1),),
    )


def test_an_info_l2_book_answer_parses_like_the_frames_data() -> None:
    """Book seeding reads the /info l2Book answer, which has the shape of the l2Book frame's data."""
    data = sim_frames_on("l2Book")[-1]["data"]
    assert parse_l2_book_answer(data) == parse_frame(json.dumps({"channel": "l2Book", "data": data}))
    assert isinstance(parse_l2_book_answer(data), L2Book)


@pytest.mark.parametrize(
    "answer", [None, [], {"coin": "X", "time": 1}, {"coin": "X", "time": 1, "levels": 5}]
)
def test_an_unreadable_l2_book_answer_is_malformed(answer: Any) -> None:
    result = parse_l2_book_answer(answer)
    assert isinstance(result, Malformed) and result.kind == "l2Book"


def test_empty_l2_book() -> None:
    assert parsed("l2Book", {"coin": "X", "time": 1, "levels": [[], []]}) == L2Book("X", 1, (), ())


def test_asset_ctx_from_the_simulator() -> None:
    assert parse_frame(json.dumps(first_on("activeAssetCtx"))) == AssetCtx(
        coin=TSLA_COIN,
        oracle_px=D(431),
        mark_px=D("430.1"),
        mid_px=D(430),
        open_interest=D("0.1"),
        funding=D("0.0"),
        premium=None,
        day_ntl_vlm=D("43.01"),
        prev_day_px=D(430),
        impact_bid=D("429.9"),
        impact_ask=D("430.1"),
    )


def test_asset_ctx_nullable_fields_null_or_absent() -> None:
    data = first_on("activeAssetCtx")["data"]
    data["ctx"].update(impactPxs=None, midPx=None, premium="0.0003")
    del data["ctx"]["prevDayPx"]
    ctx = parsed("activeAssetCtx", data)
    assert isinstance(ctx, AssetCtx)
    assert (ctx.mid_px, ctx.prev_day_px, ctx.impact_bid, ctx.impact_ask) == (None, None, None, None)
    assert ctx.premium == D("0.0003")


def test_asset_ctx_protocol_example() -> None:
    ctx = {
        "funding": "0.0", "openInterest": "12.208", "prevDayPx": "447.49", "dayNtlVlm": "0.0",
        "premium": None, "oraclePx": "450.78", "markPx": "465.13", "midPx": "464.92", "impactPxs": None,
        "dayBaseVlm": "0.0",
    }  # fmt: skip
    parsed_ctx = parsed("activeAssetCtx", {"coin": "xyz:NVDA", "ctx": ctx})
    assert isinstance(parsed_ctx, AssetCtx)
    assert (parsed_ctx.oracle_px, parsed_ctx.mark_px, parsed_ctx.mid_px) == (
        D("450.78"),
        D("465.13"),
        D("464.92"),
    )


def test_spot_asset_ctx_channel_is_unknown() -> None:
    data = first_on("activeAssetCtx")["data"]
    assert parsed("activeSpotAssetCtx", data) == Malformed(
        "unknown-channel:activeSpotAssetCtx", "no parser for this channel"
    )


def test_all_mids_from_the_simulator() -> None:
    mids = parse_frame(json.dumps(first_on("allMids")))
    assert mids == AllMids({"xyz:TSLA": D(430), "xyz:SILVER": D(32)})


def test_trades_from_the_simulator_lower_case_users() -> None:
    data = first_on("trades")["data"]
    data[0]["users"][0] = data[0]["users"][0].upper().replace("0X", "0x")
    trades = parsed("trades", data)
    assert isinstance(trades, Trades) and len(trades.trades) == 1
    trade = trades.trades[0]
    assert (trade.coin, trade.side, trade.px, trade.sz) == (TSLA_COIN, Side.BUY, D("430.1"), D("0.1"))
    assert trade.users == (USER, "0x00000000000000000000000000000000000000aa")
    assert trade.tid == data[0]["tid"] and trade.hash == data[0]["hash"]


# -------------------------------------------------------------------------------------- orderUpdates (W-002)


def order_element(oid: int, **order_changes: Any) -> dict[str, Any]:
    order = {"coin": TSLA_COIN, "side": "A", "limitPx": "431.5", "sz": "0.25", "oid": oid,
             "timestamp": 1_000, "origSz": "0.5"}  # fmt: skip
    order.update(order_changes)
    return {"order": order, "status": "open", "statusTimestamp": 2_000}


def test_order_updates_from_the_simulator() -> None:
    updates = [parse_frame(json.dumps(f)) for f in sim_frames_on("orderUpdates")]
    assert all(isinstance(u, OrderUpdates) and u.malformed == 0 for u in updates)
    first, resting = updates[0].updates[0], updates[1].updates[0]  # type: ignore[union-attr]
    assert (first.oid, first.status, first.sz, first.orig_sz, first.cloid) == (
        3,
        "filled",
        D(0),
        D("0.1"),
        None,
    )
    assert (resting.status, resting.limit_px, resting.cloid) == ("open", D(429), Cloid(CLOID_TEXT))


def test_order_updates_array_of_two_gives_two() -> None:
    updates = parsed("orderUpdates", [order_element(1), order_element(2)])
    assert isinstance(updates, OrderUpdates)
    assert [u.oid for u in updates.updates] == [1, 2] and updates.malformed == 0
    update = updates.updates[0]
    assert (update.side, update.limit_px, update.sz, update.orig_sz) == (
        Side.SELL,
        D("431.5"),
        D("0.25"),
        D("0.5"),
    )
    assert (update.timestamp_ms, update.status_timestamp_ms) == (1_000, 2_000)


def test_order_updates_empty_array_gives_nothing_and_no_failure() -> None:
    assert parsed("orderUpdates", []) == OrderUpdates((), 0)


def test_order_updates_one_malformed_element_is_counted_and_the_rest_parsed() -> None:
    bad = order_element(2)
    del bad["order"]["oid"]
    updates = parsed("orderUpdates", [order_element(1), bad, order_element(3)])
    assert isinstance(updates, OrderUpdates)
    assert [u.oid for u in updates.updates] == [1, 3] and updates.malformed == 1


def test_order_updates_single_object_gives_one() -> None:
    updates = parsed("orderUpdates", order_element(9))
    assert isinstance(updates, OrderUpdates) and [u.oid for u in updates.updates] == [9]


def test_order_updates_accept_limit_px_and_px() -> None:
    with_px = order_element(1, px="99.5")
    del with_px["order"]["limitPx"]
    updates = parsed("orderUpdates", [order_element(2), with_px])
    assert isinstance(updates, OrderUpdates)
    assert [u.limit_px for u in updates.updates] == [D("431.5"), D("99.5")]


@pytest.mark.parametrize(
    "change",
    [{"cloid": "0x12"}, {"cloid": 5}, {"side": "X"}, {"timestamp": True}, {"sz": 0.25}, {"origSz": "NaN"}],
)
def test_order_update_with_a_bad_field_is_a_counted_failure(change: dict[str, Any]) -> None:
    updates = parsed("orderUpdates", [order_element(1, **change), order_element(2)])
    assert isinstance(updates, OrderUpdates)
    assert [u.oid for u in updates.updates] == [2] and updates.malformed == 1


def test_order_update_cloid_case_is_normalised_and_null_is_none() -> None:
    updates = parsed("orderUpdates", [order_element(1, cloid=CLOID_TEXT.upper().replace("0X", "0x")),
                                      order_element(2, cloid=None)])  # fmt: skip
    assert isinstance(updates, OrderUpdates)
    assert [u.cloid for u in updates.updates] == [Cloid(CLOID_TEXT), None]


@pytest.mark.parametrize("data", [None, "x", 5, True])
def test_order_updates_data_neither_list_nor_object_is_malformed(data: Any) -> None:
    result = parsed("orderUpdates", data)
    assert isinstance(result, Malformed) and result.kind == "orderUpdates"


# ------------------------------------------------------------------------------------------------- userFills


def fill_element(tid: int, **changes: Any) -> dict[str, Any]:
    fill = first_on("userFills")["data"]["fills"] or sim_frames_on("userFills")[1]["data"]["fills"]
    element = dict(fill[0], tid=tid)
    element.update(changes)
    return element


def test_user_fills_snapshot_is_marked() -> None:
    snapshot = parse_frame(json.dumps(first_on("userFills")))
    assert snapshot == UserFills(USER, True, (), 0)


def test_user_fills_stream_message_from_the_simulator() -> None:
    stream = parse_frame(json.dumps(sim_frames_on("userFills")[1]))
    assert isinstance(stream, UserFills) and not stream.is_snapshot and stream.malformed == 0
    (fill,) = stream.fills
    assert (fill.coin, fill.px, fill.sz, fill.side, fill.dir) == (
        TSLA_COIN,
        D("430.1"),
        D("0.1"),
        Side.BUY,
        "Open Long",
    )
    assert (fill.start_position, fill.closed_pnl, fill.oid, fill.crossed) == (D(0), D(0), 3, True)
    assert (fill.fee, fill.fee_token, fill.cloid) == (D("0.038709"), "USDC", None)


def test_user_fills_stream_message_without_is_snapshot_keeps_both_fills() -> None:
    message = parsed("userFills", {"user": MIXED_CASE_USER, "fills": [fill_element(1), fill_element(2)]})
    assert isinstance(message, UserFills)
    assert (message.user, message.is_snapshot, message.malformed) == (USER, False, 0)
    assert [f.tid for f in message.fills] == [1, 2]


def test_user_fills_snapshot_with_fills() -> None:
    message = parsed("userFills", {"isSnapshot": True, "user": USER, "fills": [fill_element(1)]})
    assert isinstance(message, UserFills) and message.is_snapshot and len(message.fills) == 1


def test_user_fills_bad_fill_is_counted_and_the_rest_kept() -> None:
    fills = [fill_element(1, crossed="yes"), fill_element(2), fill_element(3, cloid="nope"), fill_element(4)]
    message = parsed("userFills", {"user": USER, "fills": fills})
    assert isinstance(message, UserFills)
    assert [f.tid for f in message.fills] == [2, 4] and message.malformed == 2


def test_user_fills_with_a_cloid_and_extra_keys() -> None:
    extra = {"cloid": CLOID_TEXT, "builderFee": "0.01", "liquidation": None, "twapId": None}
    message = parsed("userFills", {"user": USER, "fills": [fill_element(1, **extra)]})
    assert isinstance(message, UserFills) and message.fills[0].cloid == Cloid(CLOID_TEXT)


@pytest.mark.parametrize(
    "data",
    [
        {"user": USER, "fills": {}},
        {"user": USER},
        {"fills": []},
        {"isSnapshot": 1, "user": USER, "fills": []},
    ],
)
def test_user_fills_bad_envelope_is_malformed(data: dict[str, Any]) -> None:
    result = parsed("userFills", data)
    assert isinstance(result, Malformed) and result.kind == "userFills"


# ---------------------------------------------------------------------------------------------- acks (W-001)


def test_acks_from_the_simulator_match_their_subscriptions() -> None:
    acks = [parse_frame(json.dumps(f)) for f in sim_frames_on("subscriptionResponse")]
    assert all(isinstance(ack, SubscriptionAck) for ack in acks)
    subscribes = [ack for ack in acks if ack.method == "subscribe"]  # type: ignore[union-attr]
    assert [ack.key for ack in subscribes] == [subscription_key(s) for s in SUBSCRIPTIONS]  # type: ignore[union-attr]
    assert [ack.method for ack in acks[len(SUBSCRIPTIONS) :]] == ["unsubscribe"]  # type: ignore[union-attr]


def test_nested_order_updates_ack() -> None:
    subscription = {"type": "orderUpdates", "user": MIXED_CASE_USER}
    ack = parsed("subscriptionResponse", {"method": "subscribe", "subscription": subscription})
    assert ack == SubscriptionAck("subscribe", subscription, ("orderUpdates", USER))


def test_flat_ack_fallback_is_a_subscribe() -> None:
    ack = parsed("subscriptionResponse", {"type": "orderUpdates", "user": USER})
    assert isinstance(ack, SubscriptionAck)
    assert (ack.method, ack.key) == ("subscribe", ("orderUpdates", USER))


def test_unsubscribe_ack_keeps_its_method() -> None:
    subscription = {"type": "orderUpdates", "user": USER}
    ack = parsed("subscriptionResponse", {"method": "unsubscribe", "subscription": subscription})
    assert isinstance(ack, SubscriptionAck) and ack.method == "unsubscribe"


def test_an_ack_is_never_a_data_message() -> None:
    """The ack of a data channel is its own type, so it cannot be forwarded as data (W-001)."""
    for ack_frame in sim_frames_on("subscriptionResponse"):
        assert type(parse_frame(json.dumps(ack_frame))) is SubscriptionAck
    flat_order_updates = parsed("subscriptionResponse", {"type": "orderUpdates", "user": USER})
    assert type(flat_order_updates) is SubscriptionAck


@pytest.mark.parametrize(
    "data",
    [
        {"method": "subscribe", "subscription": {"type": "candle", "coin": "X", "interval": "1m"}},
        {"method": "subscribe", "subscription": {"type": "bbo"}},
        {"method": "resubscribe", "subscription": {"type": "bbo", "coin": "X"}},
        {"method": "subscribe", "subscription": "bbo"},
        {"type": 3},
        "subscribed",
    ],
)
def test_unreadable_acks_are_malformed(data: Any) -> None:
    result = parsed("subscriptionResponse", data)
    assert isinstance(result, Malformed) and result.kind == "subscriptionResponse"


@pytest.mark.parametrize(
    ("subscription", "key"),
    [
        ({"type": "bbo", "coin": "xyz:TSLA"}, ("bbo", "xyz:TSLA")),
        ({"type": "l2Book", "coin": "xyz:TSLA", "nSigFigs": None, "mantissa": None}, ("l2Book", "xyz:TSLA")),
        ({"type": "trades", "coin": "BTC"}, ("trades", "BTC")),
        ({"type": "activeAssetCtx", "coin": "xyz:TSLA"}, ("activeAssetCtx", "xyz:TSLA")),
        ({"type": "allMids", "dex": "xyz"}, ("allMids", "xyz")),
        ({"type": "allMids"}, ("allMids", "")),
        ({"type": "orderUpdates", "user": MIXED_CASE_USER}, ("orderUpdates", USER)),
        ({"type": "userFills", "user": MIXED_CASE_USER, "aggregateByTime": False}, ("userFills", USER)),
        ({"type": "candle", "coin": "BTC", "interval": "1m"}, None),
        ({"type": "bbo"}, None),
        ({"type": "bbo", "coin": ""}, None),
        ({"type": "userFills", "user": 5}, None),
        ({"type": "allMids", "dex": 1}, None),
        ({}, None),
        ({"type": ["bbo"], "coin": "X"}, None),
        ({"type": {"bbo": 1}}, None),
    ],
)
def test_subscription_key(subscription: dict[str, Any], key: tuple[str, str] | None) -> None:
    assert subscription_key(subscription) == key


@pytest.mark.parametrize("subscription", SUBSCRIPTIONS)
def test_declared_subscription_and_its_ack_give_the_same_key(subscription: dict[str, Any]) -> None:
    nested = parsed("subscriptionResponse", {"method": "subscribe", "subscription": subscription})
    flat = parsed("subscriptionResponse", subscription)
    assert isinstance(nested, SubscriptionAck) and isinstance(flat, SubscriptionAck)
    assert nested.key == flat.key == subscription_key(subscription) is not None


# -------------------------------------------------------------------------------------------- post responses


def test_post_info_response_from_the_simulator() -> None:
    info = parse_frame(json.dumps(sim_frames_on("post")[1]))
    assert isinstance(info, PostResponse) and (info.request_id, info.kind) == (8, "info")
    assert info.payload["type"] == "l2Book" and info.payload["data"]["coin"] == TSLA_COIN


def test_post_action_response_from_the_simulator() -> None:
    action = parse_frame(json.dumps(sim_frames_on("post")[0]))
    assert isinstance(action, PostResponse) and (action.request_id, action.kind) == (7, "action")
    assert parse_exchange_response(action.payload) == ExchangeOk(
        "order", (Filled(D("0.1"), D("430.1"), 5, None),)
    )


def test_post_action_with_filled_error_resting_statuses() -> None:
    statuses = [
        {"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 11}},
        {"error": "Insufficient margin to place order. asset=110000"},
        {"resting": {"oid": 13, "cloid": CLOID_TEXT}},
    ]
    payload = {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}
    post = parsed("post", {"id": 256, "response": {"type": "action", "payload": payload}})
    assert post == PostResponse(256, "action", payload)
    assert isinstance(post, PostResponse)
    assert parse_exchange_response(post.payload) == ExchangeOk(
        "order",
        (
            Filled(D("0.02"), D("1891.4"), 11, None),
            OrderError("Insufficient margin to place order. asset=110000"),
            Resting(13, Cloid(CLOID_TEXT)),
        ),
    )


def test_post_action_err() -> None:
    payload = {"status": "err", "response": "Invalid nonce: duplicate nonce 1741107452532"}
    post = parsed("post", {"id": 3, "response": {"type": "action", "payload": payload}})
    assert isinstance(post, PostResponse) and post.kind == "action"
    assert parse_exchange_response(post.payload) == ExchangeErr(
        "Invalid nonce: duplicate nonce 1741107452532"
    )


def test_post_transport_error() -> None:
    post = parsed("post", {"id": 4, "response": {"type": "error", "payload": "429 Too Many Requests"}})
    assert post == PostResponse(4, "error", "429 Too Many Requests")


@pytest.mark.parametrize(
    "data",
    [
        {"response": {"type": "info", "payload": {}}},
        {"id": "4", "response": {"type": "info", "payload": {}}},
        {"id": True, "response": {"type": "info", "payload": {}}},
        {"id": 4, "response": {"type": "explorer", "payload": {}}},
        {"id": 4, "response": {"type": "action"}},
        {"id": 4, "response": "429"},
        [],
    ],
)
def test_unreadable_post_responses_are_malformed(data: Any) -> None:
    result = parsed("post", data)
    assert isinstance(result, Malformed) and result.kind == "post"


# ---------------------------------------------------------------------------------------------- errors, junk


def test_error_channel_from_the_simulator() -> None:
    error = parse_frame(json.dumps(first_on("error")))
    assert error == ErrorFrame("Error parsing JSON into valid websocket request: nonsense")


def test_error_channel_protocol_texts() -> None:
    text = 'Already subscribed: {"type":"bbo","coin":"xyz:TSLA"}'
    assert parsed("error", text) == ErrorFrame(text)
    assert isinstance(parsed("error", {"text": text}), Malformed)


@pytest.mark.parametrize("channel", ["user", "candle", "webData3", "activeAssetData", "orderUpdates:x"])
def test_unknown_channels_are_malformed_by_name(channel: str) -> None:
    assert parsed(channel, {}) == Malformed(f"unknown-channel:{channel}", "no parser for this channel")


def test_unknown_channel_names_are_bounded() -> None:
    result = parsed("x" * 10_000, {})
    assert isinstance(result, Malformed) and len(result.kind) < 100


@pytest.mark.parametrize("text", ["", "{", "nonsense", '{"channel":"bbo"', "NaN", b"\xff\xfe", "[" * 5000])
def test_invalid_json_is_malformed_json(text: str | bytes) -> None:
    result = parse_frame(text)
    assert isinstance(result, Malformed) and result.kind == "json"


def test_every_truncated_simulator_frame_is_malformed_json() -> None:
    for text in sim_frames()[1:]:
        for cut in range(1, len(text), max(1, len(text) // 25)):
            result = parse_frame(text[:cut])
            assert isinstance(result, Malformed) and result.kind == "json", text[:cut]


@pytest.mark.parametrize(
    "text", ["[]", "5", '"bbo"', "null", '{"data":{}}', '{"channel":5}', '{"channel":["bbo"]}']
)
def test_json_that_is_not_a_channel_frame_is_malformed_shape(text: str) -> None:
    result = parse_frame(text)
    assert isinstance(result, Malformed) and result.kind == "shape"


def test_missing_data_is_malformed_with_the_channel_kind() -> None:
    assert parse_frame('{"channel":"bbo"}') == Malformed("bbo", "missing key 'data'")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("time",), "1767225600000"),
        (("time",), True),
        (("time",), 1.5),
        (("coin",), None),
        (("bbo",), [None]),
        (("bbo",), {"bid": None}),
        (("bbo", 0), "429.9"),
        (("bbo", 0, "px"), 429.9),
        (("bbo", 0, "px"), "NaN"),
        (("bbo", 0, "px"), "sNaN"),
        (("bbo", 0, "px"), "Infinity"),
        (("bbo", 0, "px"), "-inf"),
        (("bbo", 0, "px"), "4 29"),
        (("bbo", 0, "px"), ""),
        (("bbo", 1, "sz"), None),
        (("bbo", 1, "n"), "1"),
        (("bbo", 1, "n"), False),
    ],
)
def test_wrong_types_in_bbo_are_malformed(path: tuple[Any, ...], value: Any) -> None:
    data = first_on("bbo")["data"]
    target = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    result = parsed("bbo", data)
    assert isinstance(result, Malformed) and result.kind == "bbo", result
    assert len(result.reason) < 200


@pytest.mark.parametrize(
    ("key", "value"),
    [("oraclePx", None), ("markPx", 465.13), ("funding", "x"), ("impactPxs", ["1"]), ("impactPxs", "1,2"),
     ("openInterest", "Infinity"), ("dayNtlVlm", None)],
)  # fmt: skip
def test_wrong_types_in_asset_ctx_are_malformed(key: str, value: Any) -> None:
    data = first_on("activeAssetCtx")["data"]
    data["ctx"][key] = value
    result = parsed("activeAssetCtx", data)
    assert isinstance(result, Malformed) and result.kind == "activeAssetCtx"


@pytest.mark.parametrize(
    ("channel", "data"),
    [
        ("allMids", {"mids": {"X": 1.5}}),
        ("allMids", {"mids": ["X"]}),
        ("allMids", {}),
        ("trades", {"coin": "X"}),
        ("trades", [{"coin": "X"}]),
        ("l2Book", {"coin": "X", "time": 1, "levels": [[]]}),
        ("l2Book", {"coin": "X", "time": 1, "levels": [{}, []]}),
    ],
)
def test_wrong_shapes_in_other_channels_are_malformed(channel: str, data: Any) -> None:
    result = parsed(channel, data)
    assert isinstance(result, Malformed) and result.kind == channel


def test_trades_with_bad_users_are_malformed() -> None:
    data = first_on("trades")["data"]
    data[0]["users"] = [USER, 5]
    assert isinstance(parsed("trades", data), Malformed)


# -------------------------------------------------------------------------------------------- property tests

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "sNaN", "1e999999", "0x1", "1.5", "-0", "B", "A"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


def walk(value: Any) -> Iterator[Any]:
    """Every value inside a parse result: attrs fields, tuples and mappings, recursively."""
    yield value
    if attrs.has(type(value)):
        for field in attrs.fields(type(value)):
            yield from walk(getattr(value, field.name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from walk(item)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from walk(key)
            yield from walk(item)


def assert_sane(result: Frame) -> None:
    assert type(result) in {*EXPECTED_TYPES.values(), Greeting, Malformed}
    raw_json_inside = isinstance(result, PostResponse | SubscriptionAck)
    for value in walk(result):
        assert raw_json_inside or not isinstance(value, float)
        if isinstance(value, Decimal):
            assert value.is_finite()


@settings(max_examples=400, deadline=None)
@given(channel=st.sampled_from([*EXPECTED_TYPES, "unknown"]), data=JSON_VALUES)
def test_arbitrary_data_on_any_channel_never_raises(channel: str, data: Any) -> None:
    assert_sane(parse_frame(json.dumps({"channel": channel, "data": data})))


@settings(max_examples=200, deadline=None)
@given(value=JSON_VALUES)
def test_arbitrary_json_never_raises(value: Any) -> None:
    assert_sane(parse_frame(json.dumps(value)))


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=64) | st.text(max_size=64))
def test_arbitrary_bytes_and_text_never_raise(raw: bytes | str) -> None:
    assert_sane(parse_frame(raw))


def mutate(draw: st.DrawFn, node: Any) -> Any:
    """Replace or delete one randomly chosen node of a decoded frame."""
    if isinstance(node, dict) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node)))
        if draw(st.integers(0, 3)) == 0:
            del node[key]
        else:
            node[key] = mutate(draw, node[key])
        return node
    if isinstance(node, list) and node and draw(st.booleans()):
        index = draw(st.integers(0, len(node) - 1))
        node[index] = mutate(draw, node[index])
        return node
    return draw(JSON_VALUES)


@st.composite
def mutated_frames(draw: st.DrawFn) -> str:
    decoded = json.loads(draw(st.sampled_from(sim_frames()[1:])))
    mutated = decoded
    for _ in range(draw(st.integers(1, 3))):
        mutated = mutate(draw, copy.deepcopy(mutated))
    return json.dumps(mutated)


@settings(max_examples=600, deadline=None)
@given(text=mutated_frames())
def test_mutated_simulator_frames_never_raise(text: str) -> None:
    assert_sane(parse_frame(text))
