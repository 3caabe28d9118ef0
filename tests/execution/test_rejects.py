"""Reject texts: which documented error each is, and benign or alarming."""

from __future__ import annotations

import pytest

from hip3.execution.rejects import (
    RejectKind,
    classify_reject,
    is_benign_cancel_reject,
    is_benign_order_reject,
    strip_asset_suffix,
)

CASES = [
    ("Order could not immediately match against any resting orders.", RejectKind.IOC_NO_MATCH, True),
    ("Order could not immediately match against any resting orders. asset=4", RejectKind.IOC_NO_MATCH, True),
    ("Reduce only order would increase position.", RejectKind.REDUCE_ONLY_WOULD_INCREASE, True),
    ("Reduce only order would increase position. asset=110001", RejectKind.REDUCE_ONLY_WOULD_INCREASE, True),
    ("Order must have minimum value of $10.", RejectKind.MIN_NOTIONAL, True),
    ("Order must have minimum value of $10. asset=0", RejectKind.MIN_NOTIONAL, True),
    ("Order has zero size.", RejectKind.ZERO_SIZE, True),
    ("Insufficient margin to place order.", RejectKind.MARGIN, False),
    ("Insufficient margin to place order. asset=4", RejectKind.MARGIN, False),
    ("Price must be divisible by tick size.", RejectKind.TICK, False),
    (
        "Post only order would have immediately matched, bbo was 64143@64144. asset=0",
        RejectKind.POST_ONLY_WOULD_MATCH,
        False,
    ),
    ("Order would increase open interest while open interest is capped", RejectKind.OPEN_INTEREST, False),
    ("Order would increase open interest too quickly", RejectKind.OPEN_INTEREST, False),
    (
        "Order rejected due to price more aggressive than oracle while at open interest cap",
        RejectKind.OPEN_INTEREST,
        False,
    ),
    ("Order price too far from oracle", RejectKind.ORACLE, False),
    ("Order price cannot be more than 80% away from the reference price", RejectKind.ORACLE, False),
    (
        "Order would cause position to exceed margin tier limit at current leverage",
        RejectKind.MAX_POSITION,
        False,
    ),
    ("No liquidity available for market order.", RejectKind.NO_LIQUIDITY, False),
    ("Invalid nonce: duplicate nonce 1741107452532", RejectKind.NONCE, False),
    ("Invalid nonce: nonce too low 1776584283874 < 1776584799101", RejectKind.NONCE, False),
    ("User or API Wallet 0xabc does not exist.", RejectKind.SIGNER, False),
    ("L1 error: User or API Wallet 0xabc does not exist.", RejectKind.SIGNER, False),
    ("Must deposit before performing actions. User: 0xabc", RejectKind.SIGNER, False),
    ("Vault not registered: 0xabc", RejectKind.SIGNER, False),
    ("Order was never placed, already canceled, or filled.", RejectKind.CANCEL_MISSING_ORDER, False),
    ("Something we have never seen.", RejectKind.OTHER, False),
    ("", RejectKind.OTHER, False),
]


@pytest.mark.parametrize(("text", "kind", "benign_order"), CASES)
def test_order_rejects(text: str, kind: RejectKind, benign_order: bool) -> None:
    assert classify_reject(text) is kind
    assert is_benign_order_reject(text) is benign_order


@pytest.mark.parametrize(
    ("text", "benign"),
    [
        ("Order was never placed, already canceled, or filled.", True),
        ("Order was never placed, already canceled, or filled. asset=0", True),
        ("Insufficient margin to place order.", False),
        ("Order could not immediately match against any resting orders.", False),
    ],
)
def test_cancel_rejects(text: str, benign: bool) -> None:
    assert is_benign_cancel_reject(text) is benign


def test_only_a_trailing_asset_suffix_is_removed() -> None:
    assert strip_asset_suffix("Order has zero size. asset=12 ") == "Order has zero size."
    assert strip_asset_suffix("asset=4 Order has zero size.") == "asset=4 Order has zero size."
    assert classify_reject("Order has zero size. asset=x") is RejectKind.OTHER
