"""/exchange responses and order statuses: protocol examples, simulator answers, hostile input."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings

from hip3.core.order import Cloid, Side, Tif
from hip3.protocol.actions import cancel_action
from hip3.protocol.messages import (
    ExchangeErr,
    ExchangeMalformed,
    ExchangeOk,
    Filled,
    OrderError,
    OrderState,
    Resting,
    Success,
    Waiting,
    classify_order_status,
    parse_exchange_response,
)
from hip3.protocol.responses import WireError, decimal_value
from tests.protocol.test_messages import JSON_VALUES
from tests.sim import TSLA, Harness

D = Decimal
CLOID_TEXT = "0x000000000000000000000000000000aa"


def ok(response_type: str, statuses: list[Any]) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": response_type, "data": {"statuses": statuses}}}


def test_protocol_example_with_every_status_shape() -> None:
    body = ok(
        "order",
        [
            {"resting": {"oid": 77738308}},
            {"resting": {"oid": 77738309, "cloid": CLOID_TEXT}},
            {"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 77747314}},
            {"error": "Order must have minimum value of $10."},
            "waitingForFill",
            "waitingForTrigger",
        ],
    )
    assert parse_exchange_response(body) == ExchangeOk(
        "order",
        (
            Resting(77738308, None),
            Resting(77738309, Cloid(CLOID_TEXT)),
            Filled(D("0.02"), D("1891.4"), 77747314, None),
            OrderError("Order must have minimum value of $10."),
            Waiting("waitingForFill"),
            Waiting("waitingForTrigger"),
        ),
    )


def test_filled_with_cloid() -> None:
    upper_cloid = "0x" + CLOID_TEXT[2:].upper()
    body = ok("order", [{"filled": {"totalSz": "1", "avgPx": "2", "oid": 3, "cloid": upper_cloid}}])
    assert parse_exchange_response(body) == ExchangeOk("order", (Filled(D(1), D(2), 3, Cloid(CLOID_TEXT)),))


def test_bare_success_statuses_of_a_cancel() -> None:
    body = ok(
        "cancel", ["success", {"error": "Order was never placed, already canceled, or filled. asset=0"}]
    )
    assert parse_exchange_response(body) == ExchangeOk(
        "cancel", (Success(), OrderError("Order was never placed, already canceled, or filled. asset=0"))
    )


def test_bare_success_in_an_order_response() -> None:
    assert parse_exchange_response(ok("order", ["success"])) == ExchangeOk("order", (Success(),))


def test_default_response_has_no_statuses() -> None:
    assert parse_exchange_response({"status": "ok", "response": {"type": "default"}}) == ExchangeOk(
        "default", ()
    )


def test_twap_style_data_without_statuses() -> None:
    body = {"status": "ok", "response": {"type": "twapOrder", "data": {"status": {"running": {"twapId": 7}}}}}
    assert parse_exchange_response(body) == ExchangeOk("twapOrder", ())


def test_pre_validation_gives_fewer_statuses_than_orders() -> None:
    body = ok("order", [{"error": "Order price cannot be more than 80% away from the reference price"}])
    result = parse_exchange_response(body)
    assert isinstance(result, ExchangeOk) and len(result.statuses) == 1


def test_top_level_err() -> None:
    body = {"status": "err", "response": "Must deposit before performing actions. User: 0xabc"}
    assert parse_exchange_response(body) == ExchangeErr("Must deposit before performing actions. User: 0xabc")


def test_raw_text_and_bytes_bodies() -> None:
    body = ok("cancel", ["success"])
    assert parse_exchange_response(json.dumps(body)) == parse_exchange_response(body)
    assert parse_exchange_response(json.dumps(body).encode()) == parse_exchange_response(body)
    unprocessable = parse_exchange_response("Failed to deserialize the JSON body into the target type")
    assert isinstance(unprocessable, ExchangeMalformed) and "Failed to deserialize" in unprocessable.reason


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "",
        {},
        {"status": "ok"},
        {"status": "ok", "response": "default"},
        {"status": "ok", "response": {"data": {"statuses": []}}},
        {"status": "maybe", "response": {"type": "default"}},
        {"status": "err", "response": {"text": "x"}},
        {"status": "err"},
        {"status": "ok", "response": {"type": "order", "data": {"statuses": "success"}}},
        {"status": "ok", "response": {"type": "order", "data": []}},
        ok("order", ["pending"]),
        ok("order", [{"queued": {"oid": 1}}]),
        ok("order", [None]),
        ok("order", [{"resting": {"oid": "1"}}]),
        ok("order", [{"resting": {"oid": True}}]),
        ok("order", [{"resting": {"oid": 1, "cloid": "0xzz"}}]),
        ok("order", [{"resting": 1}]),
        ok("order", [{"filled": {"totalSz": "NaN", "avgPx": "1", "oid": 1}}]),
        ok("order", [{"filled": {"totalSz": "1", "avgPx": 1.5, "oid": 1}}]),
        ok("order", [{"filled": {"totalSz": "1", "oid": 1}}]),
        ok("order", [{"error": None}]),
        ok("order", [{"resting": {"oid": 1}}, "mystery"]),
    ],
)
def test_unreadable_bodies_are_malformed(body: Any) -> None:
    result = parse_exchange_response(body)
    assert isinstance(result, ExchangeMalformed), result
    assert 0 < len(result.reason) < 200


def test_one_bad_status_makes_the_whole_response_malformed_so_none_shift() -> None:
    body = ok("order", [{"resting": {"oid": 1}}, {"resting": {"oid": "2"}}, {"resting": {"oid": 3}}])
    assert isinstance(parse_exchange_response(body), ExchangeMalformed)


def test_extra_keys_are_ignored() -> None:
    body = ok("order", [{"resting": {"oid": 1, "extra": 1}, "note": "x"}])
    body["response"]["extra"] = True
    assert parse_exchange_response(body) == ExchangeOk("order", (Resting(1, None),))


def test_simulator_answers() -> None:
    harness = Harness()
    harness.quotes("xyz:TSLA", [("429.9", "1")], [("430.1", "1")])
    answers = [
        harness.order(TSLA, Side.BUY, "431", "0.1", Tif.IOC),
        harness.order(TSLA, Side.BUY, "429", "0.1", cloid=Cloid.from_int(0xAA)),
        harness.order(TSLA, Side.BUY, "429", "0.001"),
        harness.post(cancel_action([(TSLA, 4), (TSLA, 4)]))[1],
    ]
    assert [parse_exchange_response(answer) for answer in answers] == [
        ExchangeOk("order", (Filled(D("0.1"), D("430.1"), 3, None),)),
        ExchangeOk("order", (Resting(4, Cloid(CLOID_TEXT)),)),
        ExchangeOk("order", (OrderError("Order must have minimum value of $10."),)),
        ExchangeOk("cancel", (Success(), OrderError("Order was never placed, already canceled, or filled."))),
    ]


@settings(max_examples=300, deadline=None)
@given(body=JSON_VALUES)
def test_arbitrary_bodies_never_raise(body: Any) -> None:
    result = parse_exchange_response(body)
    assert isinstance(result, ExchangeOk | ExchangeErr | ExchangeMalformed)


@settings(max_examples=300, deadline=None)
@given(status=JSON_VALUES)
def test_arbitrary_statuses_never_raise_nor_give_non_finite_decimals(status: Any) -> None:
    result = parse_exchange_response(ok("order", [status, {"filled": status}, {"resting": status}]))
    if isinstance(result, ExchangeOk):
        for item in result.statuses:
            if isinstance(item, Filled):
                assert item.total_sz.is_finite() and item.avg_px.is_finite()


# ---------------------------------------------------------------------------------------------- order states

VOCABULARY = {
    "open": OrderState.OPEN,
    "filled": OrderState.FILLED,
    "canceled": OrderState.CANCELLED,
    "triggered": OrderState.TRIGGERED,
    "rejected": OrderState.REJECTED,
    "marginCanceled": OrderState.CANCELLED,
    "vaultWithdrawalCanceled": OrderState.CANCELLED,
    "openInterestCapCanceled": OrderState.CANCELLED,
    "selfTradeCanceled": OrderState.CANCELLED,
    "reduceOnlyCanceled": OrderState.CANCELLED,
    "siblingFilledCanceled": OrderState.CANCELLED,
    "delistedCanceled": OrderState.CANCELLED,
    "liquidatedCanceled": OrderState.CANCELLED,
    "scheduledCancel": OrderState.CANCELLED,
    "tickRejected": OrderState.REJECTED,
    "minTradeNtlRejected": OrderState.REJECTED,
    "perpMarginRejected": OrderState.REJECTED,
    "reduceOnlyRejected": OrderState.REJECTED,
    "badAloPxRejected": OrderState.REJECTED,
    "iocCancelRejected": OrderState.REJECTED,
    "badTriggerPxRejected": OrderState.REJECTED,
    "marketOrderNoLiquidityRejected": OrderState.REJECTED,
    "positionIncreaseAtOpenInterestCapRejected": OrderState.REJECTED,
    "positionFlipAtOpenInterestCapRejected": OrderState.REJECTED,
    "tooAggressiveAtOpenInterestCapRejected": OrderState.REJECTED,
    "openInterestIncreaseRejected": OrderState.REJECTED,
    "insufficientSpotBalanceRejected": OrderState.REJECTED,
    "oracleRejected": OrderState.REJECTED,
    "perpMaxPositionRejected": OrderState.REJECTED,
}


@pytest.mark.parametrize(("status", "state"), VOCABULARY.items())
def test_documented_vocabulary(status: str, state: OrderState) -> None:
    assert classify_order_status(status) == (state, True)


def test_w007_statuses_are_all_terminal() -> None:
    assert [
        classify_order_status(s) for s in ("perpMarginRejected", "marginCanceled", "scheduledCancel")
    ] == [
        (OrderState.REJECTED, True),
        (OrderState.CANCELLED, True),
        (OrderState.CANCELLED, True),
    ]
    assert classify_order_status("weirdNew") == (OrderState.CANCELLED, False)


@pytest.mark.parametrize(
    ("status", "state"),
    [("futureThingRejected", OrderState.REJECTED), ("futureThingCanceled", OrderState.CANCELLED),
     ("futureThingCancelled", OrderState.CANCELLED)],
)  # fmt: skip
def test_new_statuses_follow_their_suffix(status: str, state: OrderState) -> None:
    assert classify_order_status(status) == (state, True)


@pytest.mark.parametrize("status", ["", "Open", "FILLED", "weirdNew", "pending"])
def test_unknown_statuses_are_cancelled_and_flagged(status: str) -> None:
    assert classify_order_status(status) == (OrderState.CANCELLED, False)


@pytest.mark.parametrize("text", ["1e999999999", "-1e31", "1e-31", "0.0000000000000000000000000000001"])
def test_numbers_beyond_any_exchange_value_are_refused(text: str) -> None:
    with pytest.raises(WireError, match="out of range"):
        decimal_value(text, "px")


@pytest.mark.parametrize("text", ["0", "0E-40", "123456789012345.5", "0.000000000000000001", "-2.5"])
def test_ordinary_numbers_pass(text: str) -> None:
    assert decimal_value(text, "px") == Decimal(text)
