"""Parsing /info clearinghouseState answers."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest

from hip3.protocol.account import AccountStateError, parse_account_state


def _state(szi: str = "-0.5", entry_px: Any = "431.5", account_value: Any = "1000.25") -> dict[str, Any]:
    return {
        "time": 1_700_000_000_000,
        "assetPositions": [
            {"position": {"coin": "xyz:TSLA", "szi": szi, "entryPx": entry_px}},
            {"position": {"coin": "xyz:GOLD", "szi": "0.0", "entryPx": None}},
        ],
        "marginSummary": {"accountValue": account_value},
        "withdrawable": "900",
    }


def test_parses_positions_and_skips_flat_markets() -> None:
    state = parse_account_state(_state())
    assert state.time_ms == 1_700_000_000_000
    assert state.positions == {"xyz:TSLA": (Decimal("-0.5"), Decimal("431.5"))}
    assert state.account_value == Decimal("1000.25")
    assert state.withdrawable == Decimal(900)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (_state(entry_px=431.5), "assetPositions[0].position.entryPx"),  # a JSON number, not a string
        (_state(szi="lots"), "assetPositions[0].position.szi"),
        (_state(account_value="NaN"), "marginSummary.accountValue"),
        (_state(szi="1e999999999"), "assetPositions[0].position.szi"),  # would overflow later arithmetic
    ],
    ids=["number", "not-a-number", "not-finite", "out-of-range"],
)
def test_a_bad_amount_names_its_place(body: dict[str, Any], where: str) -> None:
    with pytest.raises(AccountStateError, match="^" + re.escape(where) + " "):
        parse_account_state(body)
