"""Action builders produce the exact actions (key order included) that the SDK signs."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import msgpack
import pytest

from hip3.core.order import Cloid, Side, Tif
from hip3.protocol.actions import (
    OrderRequest,
    approve_agent_action,
    cancel_action,
    cancel_by_cloid_action,
    exchange_request,
    noop_action,
    order_action,
    order_wire,
    schedule_cancel_action,
    update_leverage_action,
)
from tests.conftest import VECTORS_FILE

CLOID = Cloid("0x6f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e")


def vector_action(name: str) -> dict[str, Any]:
    cases = json.loads(VECTORS_FILE.read_text())["cases"]
    return next(c["action"] for c in cases if c["name"] == name)  # type: ignore[no-any-return]


def same_bytes(built: dict[str, Any], expected: dict[str, Any]) -> bool:
    return bool(msgpack.packb(built) == msgpack.packb(expected))


@pytest.mark.parametrize(
    ("name", "built"),
    [
        (
            "order_gtc",
            order_action([OrderRequest(asset=1, side=Side.BUY, price=D(100), size=D(100), tif=Tif.GTC)]),
        ),
        (
            "order_cloid",
            order_action(
                [
                    OrderRequest(
                        asset=1,
                        side=Side.BUY,
                        price=D(100),
                        size=D(100),
                        tif=Tif.GTC,
                        cloid=Cloid.from_int(1),
                    )
                ]
            ),
        ),
        (
            "hip3_ioc_batch",
            order_action(
                [
                    OrderRequest(
                        asset=110026,
                        side=Side.BUY,
                        price=D("104.63"),
                        size=D("0.2"),
                        tif=Tif.IOC,
                        cloid=CLOID,
                    ),
                    OrderRequest(
                        asset=110029,
                        side=Side.SELL,
                        price=D("61.20"),
                        size=D("0.350"),
                        tif=Tif.IOC,
                        reduce_only=True,
                    ),
                ]
            ),
        ),
        (
            "hip3_alo",
            order_action(
                [OrderRequest(asset=110005, side=Side.SELL, price=D("431.55"), size=D("0.05"), tif=Tif.ALO)]
            ),
        ),
        ("cancel", cancel_action([(110026, 82382)])),
        ("cancel_by_cloid", cancel_by_cloid_action([(110026, CLOID)])),
        ("schedule_cancel", schedule_cancel_action(None)),
        ("schedule_cancel_time", schedule_cancel_action(123456789)),
        ("update_leverage", update_leverage_action(110026, is_cross=False, leverage=5)),
        (
            "order_vault_expires",
            order_action(
                [OrderRequest(asset=0, side=Side.BUY, price=D("30000"), size=D("0.1"), tif=Tif.GTC)]
            ),
        ),
    ],
)
def test_builders_reproduce_the_vector_actions_byte_for_byte(name: str, built: dict[str, Any]) -> None:
    expected = vector_action(name)
    assert built == expected
    assert same_bytes(built, expected)


def test_order_wire_key_order_and_cloid_omitted_when_absent() -> None:
    wire = order_wire(OrderRequest(asset=3, side=Side.SELL, price=D("1.50"), size=D("2"), tif=Tif.IOC))
    assert list(wire) == ["a", "b", "p", "s", "r", "t"]
    assert wire["p"] == "1.5"
    with_cloid = order_wire(
        OrderRequest(asset=3, side=Side.SELL, price=D("1.5"), size=D("2"), tif=Tif.IOC, cloid=CLOID)
    )
    assert list(with_cloid) == ["a", "b", "p", "s", "r", "t", "c"]


def test_order_request_refuses_bad_numbers() -> None:
    with pytest.raises(ValueError):
        OrderRequest(asset=1, side=Side.BUY, price=D(0), size=D(1), tif=Tif.IOC)
    with pytest.raises(ValueError):
        OrderRequest(asset=1, side=Side.BUY, price=D(1), size=D("NaN"), tif=Tif.IOC)
    with pytest.raises(ValueError):
        OrderRequest(asset=1, side=Side.BUY, price=1.5, size=D(1), tif=Tif.IOC)  # type: ignore[arg-type]


def test_empty_batches_are_refused() -> None:
    for build in (lambda: order_action([]), lambda: cancel_action([]), lambda: cancel_by_cloid_action([])):
        with pytest.raises(ValueError, match="at least one"):
            build()


def test_small_actions() -> None:
    assert noop_action() == {"type": "noop"}
    assert approve_agent_action("0xABCDEF0000000000000000000000000000000001", "bot", 7) == {
        "type": "approveAgent",
        "agentAddress": "0xabcdef0000000000000000000000000000000001",
        "agentName": "bot",
        "nonce": 7,
    }
    with pytest.raises(ValueError):
        update_leverage_action(1, is_cross=False, leverage=0)
    with pytest.raises(ValueError):
        schedule_cancel_action(-1)


def test_exchange_request_shape_matches_the_sdk() -> None:
    body = exchange_request({"type": "noop"}, {"r": "0x1", "s": "0x2", "v": 27}, nonce=5)
    assert list(body) == ["action", "nonce", "signature", "vaultAddress", "expiresAfter"]
    assert body["vaultAddress"] is None and body["expiresAfter"] is None
