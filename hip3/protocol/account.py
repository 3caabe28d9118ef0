"""The account's state as /info clearinghouseState reports it (per dex), parsed for the tracker and sizing."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from hip3.protocol.responses import WireError, decimal_value


class AccountStateError(ValueError):
    """A clearinghouseState answer that is not the documented shape."""


@attrs.frozen
class AccountState:
    time_ms: int  # the exchange's time of the snapshot
    positions: Mapping[str, tuple[Decimal, Decimal]]  # coin -> (signed size, entry px); flat markets absent
    account_value: Decimal  # marginSummary.accountValue
    withdrawable: Decimal  # top level (predecessor "U MarginSummary schema")


def _decimal(value: Any, where: str) -> Decimal:
    try:
        return decimal_value(value, where)
    except WireError as exc:
        raise AccountStateError(str(exc)) from None


def _position(entry: Any, index: int) -> tuple[str, Decimal, Decimal] | None:
    where = f"assetPositions[{index}].position"
    position = entry.get("position") if isinstance(entry, dict) else None
    if not isinstance(position, dict) or not isinstance(position.get("coin"), str):
        raise AccountStateError(f"{where}: expected an object with a coin")
    size = _decimal(position.get("szi"), f"{where}.szi")
    if size == 0:
        return None
    entry_px = _decimal(position.get("entryPx"), f"{where}.entryPx")
    return position["coin"], size, entry_px


def parse_account_state(body: Any) -> AccountState:
    if not isinstance(body, dict):
        raise AccountStateError(f"expected an object, got {type(body).__name__}")
    time_ms = body.get("time")
    if type(time_ms) is not int:
        raise AccountStateError(f"time: expected an integer, got {time_ms!r}")
    entries = body.get("assetPositions")
    if not isinstance(entries, list):
        raise AccountStateError("assetPositions: expected a list")
    positions = {}
    for index, entry in enumerate(entries):
        parsed = _position(entry, index)
        if parsed is not None:
            positions[parsed[0]] = (parsed[1], parsed[2])
    summary = body.get("marginSummary")
    if not isinstance(summary, dict):
        raise AccountStateError("marginSummary: expected an object")
    return AccountState(
        time_ms=time_ms,
        positions=positions,
        account_value=_decimal(summary.get("accountValue"), "marginSummary.accountValue"),
        withdrawable=_decimal(body.get("withdrawable"), "withdrawable"),
    )
