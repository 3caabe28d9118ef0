"""Builders for /exchange actions, with the exact key order the signature hash depends on.

Key order is part of the msgpack hash (protocol reference §1.2): the action's `type` first, then its fields;
an order wire is `a, b, p, s, r, t[, c]`, with `c` left out (not null) when there is no cloid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Literal

import attrs

from hip3.core.order import Cloid, Side, Tif
from hip3.core.rounding import RoundingError, to_wire

Grouping = Literal["na", "normalTpsl", "positionTpsl"]
Action = dict[str, Any]

MIN_SCHEDULE_CANCEL_LEAD_MS = 5_000


@attrs.frozen(slots=True)
class OrderRequest:
    """A limit order ready for the wire: price and size already rounded to the market's rules."""

    asset: int
    side: Side
    price: Decimal
    size: Decimal
    tif: Tif
    reduce_only: bool = False
    cloid: Cloid | None = None

    def __attrs_post_init__(self) -> None:
        for name, value in (("price", self.price), ("size", self.size)):
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise RoundingError(f"order {name} must be a positive finite Decimal, got {value!r}")
        if self.asset < 0:
            raise ValueError(f"asset id must be ≥ 0, got {self.asset}")

    @property
    def notional(self) -> Decimal:
        return self.price * self.size


def order_wire(order: OrderRequest) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "a": order.asset,
        "b": order.side.is_buy,
        "p": to_wire(order.price),
        "s": to_wire(order.size),
        "r": order.reduce_only,
        "t": {"limit": {"tif": order.tif.value}},
    }
    if order.cloid is not None:
        wire["c"] = order.cloid.value
    return wire


def order_action(orders: Sequence[OrderRequest], grouping: Grouping = "na") -> Action:
    return order_action_of_wires([order_wire(o) for o in orders], grouping)


def order_action_of_wires(wires: Sequence[dict[str, Any]], grouping: Grouping = "na") -> Action:
    """The order action of wire orders already built (`order_wire`)."""
    if not wires:
        raise ValueError("an order action needs at least one order")
    return {"type": "order", "orders": list(wires), "grouping": grouping}


def cancel_action(cancels: Iterable[tuple[int, int]]) -> Action:
    """Cancel by exchange order id: pairs of (asset, oid)."""
    entries = [{"a": asset, "o": oid} for asset, oid in cancels]
    if not entries:
        raise ValueError("a cancel action needs at least one order")
    return {"type": "cancel", "cancels": entries}


def cancel_by_cloid_action(cancels: Iterable[tuple[int, Cloid]]) -> Action:
    """Cancel by client order id: pairs of (asset, cloid)."""
    entries = [{"asset": asset, "cloid": cloid.value} for asset, cloid in cancels]
    if not entries:
        raise ValueError("a cancelByCloid action needs at least one order")
    return {"type": "cancelByCloid", "cancels": entries}


def schedule_cancel_action(time_ms: int | None) -> Action:
    """Arm the dead-man switch for `time_ms` (wall-clock ms), or clear it with None."""
    if time_ms is None:
        return {"type": "scheduleCancel"}
    if time_ms < 0:
        raise ValueError(f"scheduleCancel time must be ≥ 0, got {time_ms}")
    return {"type": "scheduleCancel", "time": time_ms}


def update_leverage_action(asset: int, *, is_cross: bool, leverage: int) -> Action:
    if leverage < 1:
        raise ValueError(f"leverage must be ≥ 1, got {leverage}")
    return {"type": "updateLeverage", "asset": asset, "isCross": is_cross, "leverage": leverage}


def noop_action() -> Action:
    """Burns a nonce; signing one also proves the key without touching any market."""
    return {"type": "noop"}


def approve_agent_action(agent_address: str, agent_name: str, nonce: int) -> Action:
    """approveAgent before signing: pass it through `prepare_user_signed_action` to add the chain fields."""
    return {
        "type": "approveAgent",
        "agentAddress": agent_address.lower(),
        "agentName": agent_name,
        "nonce": nonce,
    }


def exchange_request(
    action: Action,
    signature: dict[str, Any],
    *,
    nonce: int,
    vault_address: str | None = None,
    expires_after: int | None = None,
) -> dict[str, Any]:
    """The /exchange body, shaped as the official SDK sends it (null vault and expiry when unset)."""
    return {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": vault_address,
        "expiresAfter": expires_after,
    }
