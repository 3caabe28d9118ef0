"""Re-encode a posted L1 action in the canonical key order the node hashes (protocol reference §1.2).

The real node deserialises the action into typed records and serialises them again before hashing, so a client
that hashed its keys in another order (or with extra keys, or with `f: false`) recovers a different address.
We do the same: unknown keys are dropped, known ones are put in canonical order, values are kept exactly as
posted (a price string "2000.0" hashes as "2000.0"). A shape that the typed records could not hold raises
MalformedAction, which the engine answers with HTTP 422.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

Action = dict[str, Any]

_DECIMAL_TEXT: Final = re.compile(r"[0-9]+(\.[0-9]+)?")
_HEX_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_CLOID: Final = re.compile(r"0x[0-9a-fA-F]{32}")
TIFS: Final = ("Alo", "Ioc", "Gtc")
GROUPINGS: Final = ("na", "normalTpsl", "positionTpsl")


class MalformedAction(ValueError):
    """The action cannot be read as the typed record its `type` names."""


def _require(condition: bool, detail: str) -> None:
    if not condition:
        raise MalformedAction(detail)


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    _require(isinstance(value, Mapping), f"{what}: expected a map")
    assert isinstance(value, Mapping)
    return value


def _int(value: object, what: str) -> int:
    _require(type(value) is int and value >= 0, f"{what}: expected an unsigned integer")
    assert isinstance(value, int)
    return value


def _bool(value: object, what: str) -> bool:
    _require(type(value) is bool, f"{what}: expected a boolean")
    return bool(value)


def _number_text(value: object, what: str) -> str:
    _require(
        isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value) is not None, f"{what}: expected a number"
    )
    assert isinstance(value, str)
    return value


def parse_number(text: str) -> Decimal:
    """A posted price or size as a Decimal (already checked by `_number_text`)."""
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only plain decimals
        raise MalformedAction(f"not a number: {text!r}") from None


def _list(value: object, what: str) -> list[Any]:
    _require(isinstance(value, list) and len(value) > 0, f"{what}: expected a non-empty list")
    assert isinstance(value, list)
    return value


def _order_type(value: object) -> dict[str, Any]:
    t = _mapping(value, "order t")
    if "limit" in t:
        limit = _mapping(t["limit"], "order t.limit")
        _require(limit.get("tif") in TIFS, "order t.limit.tif: expected Alo, Ioc or Gtc")
        return {"limit": {"tif": limit["tif"]}}
    trigger = _mapping(t.get("trigger"), "order t.trigger")
    _require(trigger.get("tpsl") in ("tp", "sl"), "order t.trigger.tpsl: expected tp or sl")
    return {
        "trigger": {
            "isMarket": _bool(trigger.get("isMarket"), "order t.trigger.isMarket"),
            "triggerPx": _number_text(trigger.get("triggerPx"), "order t.trigger.triggerPx"),
            "tpsl": trigger["tpsl"],
        }
    }


def order_wire(value: object) -> dict[str, Any]:
    order = _mapping(value, "order")
    wire: dict[str, Any] = {
        "a": _int(order.get("a"), "order a"),
        "b": _bool(order.get("b"), "order b"),
        "p": _number_text(order.get("p"), "order p"),
        "s": _number_text(order.get("s"), "order s"),
        "r": _bool(order.get("r"), "order r"),
        "t": _order_type(order.get("t")),
    }
    cloid = order.get("c")
    if cloid is not None:
        _require(isinstance(cloid, str) and _CLOID.fullmatch(cloid) is not None, "order c: expected a cloid")
        wire["c"] = cloid
    return wire


def _builder(value: object) -> dict[str, Any]:
    builder = _mapping(value, "builder")
    address = builder.get("b")
    _require(isinstance(address, str) and _HEX_ADDRESS.fullmatch(address) is not None, "builder b: address")
    return {"b": address, "f": _int(builder.get("f"), "builder f")}


def _order_action(action: Mapping[str, Any]) -> Action:
    _require(action.get("grouping") in GROUPINGS, "grouping: expected na, normalTpsl or positionTpsl")
    out: Action = {
        "type": "order",
        "orders": [order_wire(o) for o in _list(action.get("orders"), "orders")],
        "grouping": action["grouping"],
    }
    if action.get("builder") is not None:
        out["builder"] = _builder(action["builder"])
    return out


def _with_fast_flag(action: Mapping[str, Any], out: Action) -> Action:
    if action.get("f") is True:  # `f: false` is not serialised by the node, so it fails to verify
        out["f"] = True
    return out


def _cancel_action(action: Mapping[str, Any]) -> Action:
    cancels = []
    for entry in _list(action.get("cancels"), "cancels"):
        cancel = _mapping(entry, "cancel")
        cancels.append({"a": _int(cancel.get("a"), "cancel a"), "o": _int(cancel.get("o"), "cancel o")})
    return _with_fast_flag(action, {"type": "cancel", "cancels": cancels})


def _cancel_by_cloid_action(action: Mapping[str, Any]) -> Action:
    cancels = []
    for entry in _list(action.get("cancels"), "cancels"):
        cancel = _mapping(entry, "cancel")
        cloid = cancel.get("cloid")
        _require(
            isinstance(cloid, str) and _CLOID.fullmatch(cloid) is not None, "cancel cloid: expected cloid"
        )
        cancels.append({"asset": _int(cancel.get("asset"), "cancel asset"), "cloid": cloid})
    return _with_fast_flag(action, {"type": "cancelByCloid", "cancels": cancels})


def _schedule_cancel_action(action: Mapping[str, Any]) -> Action:
    if action.get("time") is None:
        return {"type": "scheduleCancel"}
    return {"type": "scheduleCancel", "time": _int(action["time"], "time")}


def _update_leverage_action(action: Mapping[str, Any]) -> Action:
    return {
        "type": "updateLeverage",
        "asset": _int(action.get("asset"), "asset"),
        "isCross": _bool(action.get("isCross"), "isCross"),
        "leverage": _int(action.get("leverage"), "leverage"),
    }


def _noop_action(action: Mapping[str, Any]) -> Action:
    return {"type": "noop"}


_L1_ACTIONS: Final[dict[str, Callable[[Mapping[str, Any]], Action]]] = {
    "order": _order_action,
    "cancel": _cancel_action,
    "cancelByCloid": _cancel_by_cloid_action,
    "scheduleCancel": _schedule_cancel_action,
    "updateLeverage": _update_leverage_action,
    "noop": _noop_action,
}


def canonical_l1_action(action: object) -> Action:
    """The action in the node's canonical form, ready to hash. Raises MalformedAction."""
    body = _mapping(action, "action")
    encode = _L1_ACTIONS.get(body.get("type"))  # type: ignore[arg-type]
    _require(encode is not None, f"action type: unknown variant {body.get('type')!r}")
    assert encode is not None
    return encode(body)


def approve_agent_fields(action: object) -> tuple[str, str]:
    """(agent address lower-cased, agent name) of a posted approveAgent; a missing name means ""."""
    body = _mapping(action, "action")
    address = body.get("agentAddress")
    _require(
        isinstance(address, str) and _HEX_ADDRESS.fullmatch(address) is not None, "agentAddress: address"
    )
    name = body.get("agentName", "")
    _require(isinstance(name, str), "agentName: expected a string")
    for field in ("hyperliquidChain", "signatureChainId"):
        _require(isinstance(body.get(field), str), f"{field}: expected a string")
    _int(body.get("nonce"), "nonce")
    assert isinstance(address, str) and isinstance(name, str)
    return address.lower(), name
