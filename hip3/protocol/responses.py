"""/exchange responses and the order status vocabulary, as typed values; plus the wire field readers.

`parse_exchange_response` takes the decoded HTTP body of an /exchange call, or the `payload` of a WebSocket
post response of kind "action" (protocol reference §4.4, §7.4). It never raises: a body it cannot read becomes
`ExchangeMalformed`. Statuses are positional (one per order of the request, or a single one for a batch
refused at pre-validation), so one unreadable status makes the whole response malformed rather than shifting
the others onto the wrong orders; the caller then reconciles through orderStatus / openOrders.

The readers at the bottom are shared with `hip3.protocol.frames`: they raise `WireError` (or let KeyError /
TypeError through) and the parse functions turn that into a typed malformed value.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs
import orjson

from hip3.core.order import Cloid, CloidError

# ------------------------------------------------------------------------------------------ responses


@attrs.frozen(slots=True)
class Resting:
    oid: int
    cloid: Cloid | None


@attrs.frozen(slots=True)
class Filled:
    total_sz: Decimal
    avg_px: Decimal
    oid: int
    cloid: Cloid | None


@attrs.frozen(slots=True)
class OrderError:
    text: str


@attrs.frozen(slots=True)
class Success:
    """The bare status string "success" (cancels; ALO placements in the predecessor's logs, ab326e5)."""


@attrs.frozen(slots=True)
class Waiting:
    """A grouped TP/SL child not placed yet: "waitingForFill" or "waitingForTrigger"."""

    text: str


OrderStatus = Resting | Filled | OrderError | Success | Waiting


@attrs.frozen(slots=True)
class ExchangeOk:
    response_type: str
    statuses: tuple[OrderStatus, ...]  # empty for {"type":"default"} and other responses without statuses


@attrs.frozen(slots=True)
class ExchangeErr:
    """The whole action was refused: {"status":"err","response":"<text>"}."""

    text: str


@attrs.frozen(slots=True)
class ExchangeMalformed:
    reason: str


ExchangeResponse = ExchangeOk | ExchangeErr | ExchangeMalformed

_SUCCESS = Success()
_WAITING = {"waitingForFill": Waiting("waitingForFill"), "waitingForTrigger": Waiting("waitingForTrigger")}


def parse_exchange_response(body: Any) -> ExchangeResponse:
    """Read an /exchange response body (decoded JSON, or its raw text/bytes)."""
    if isinstance(body, str | bytes | bytearray):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            return ExchangeMalformed(f"not JSON: {short(body)}")
    try:
        return _read_exchange_response(body)
    except PARSE_ERRORS as exc:
        return ExchangeMalformed(reason_of(exc))


def _read_exchange_response(body: Any) -> ExchangeResponse:
    body = mapping(body, "body")
    status = body["status"]
    if status == "err":
        return ExchangeErr(text(body, "response"))
    if status != "ok":
        raise WireError(f"status must be 'ok' or 'err', got {short(status)}")
    response = mapping(body["response"], "response")
    return ExchangeOk(text(response, "type"), _read_statuses(response.get("data")))


def _read_statuses(data: Any) -> tuple[OrderStatus, ...]:
    raw = None if data is None else mapping(data, "data").get("statuses")
    if raw is None:
        return ()
    if type(raw) is not list:
        raise WireError(f"statuses must be a list, got {short(raw)}")
    return tuple(map(_read_status, raw))


def _read_status(raw: Any) -> OrderStatus:
    if type(raw) is str:
        if raw == "success":
            return _SUCCESS
        waiting = _WAITING.get(raw)
        if waiting is None:
            raise WireError(f"unknown status string {short(raw)}")
        return waiting
    status = mapping(raw, "status")
    if "resting" in status:
        resting = mapping(status["resting"], "resting")
        return Resting(integer(resting, "oid"), cloid(resting))
    if "filled" in status:
        filled = mapping(status["filled"], "filled")
        total_sz, avg_px = decimal(filled, "totalSz"), decimal(filled, "avgPx")
        return Filled(total_sz, avg_px, integer(filled, "oid"), cloid(filled))
    if "error" in status:
        return OrderError(text(status, "error"))
    raise WireError(f"unknown status {short(raw)}")


# ------------------------------------------------------------------------------------------ order states


class OrderState(enum.Enum):
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    TRIGGERED = "triggered"


_EXACT_STATES = {
    "open": OrderState.OPEN,
    "filled": OrderState.FILLED,
    "triggered": OrderState.TRIGGERED,
    "canceled": OrderState.CANCELLED,
    "rejected": OrderState.REJECTED,
    "scheduledCancel": OrderState.CANCELLED,
}


def classify_order_status(status: str) -> tuple[OrderState, bool]:
    """Map a status of §4.7 to its state; `known` is False for a status no rule covers.

    An unknown status is reported as CANCELLED: terminal, so nothing stays pending on a word we cannot read
    (predecessor W-007). The caller warns when `known` is False.
    """
    state = _EXACT_STATES.get(status)
    if state is not None:
        return state, True
    if status.endswith("Rejected"):
        return OrderState.REJECTED, True
    if status.endswith(("Canceled", "Cancelled", "Cancel")):
        return OrderState.CANCELLED, True
    return OrderState.CANCELLED, False


# ------------------------------------------------------------------------------------------ field readers


class WireError(ValueError):
    """A value on the wire has the wrong type or form."""


# What a reader may raise on bad input; parse functions catch exactly these.
PARSE_ERRORS = (WireError, LookupError, TypeError, ValueError, ArithmeticError)
_SHORT = 60


def short(value: Any) -> str:
    """A bounded repr for reasons, so a huge frame does not become a huge log line."""
    rendered = repr(value)
    return rendered if len(rendered) <= _SHORT else rendered[: _SHORT - 3] + "..."


def reason_of(exc: Exception) -> str:
    if isinstance(exc, WireError):
        return str(exc)
    if isinstance(exc, KeyError) and exc.args:
        return f"missing key {short(exc.args[0])}"
    return f"{type(exc).__name__}: {str(exc)[:_SHORT]}"


def mapping(value: Any, what: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise WireError(f"{what} must be an object, got {short(value)}")
    return value


MAX_EXPONENT = 30  # no price, size or amount on the exchange comes near 1e30 or 1e-30


def decimal_value(value: Any, what: str) -> Decimal:
    """A price, size or amount: a numeric string (never a JSON number, which would pass through a float)."""
    if type(value) is not str:
        raise WireError(f"{what} must be a numeric string, got {short(value)}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise WireError(f"{what} is not a number: {short(value)}") from None
    if not number.is_finite():
        raise WireError(f"{what} must be finite, got {short(value)}")
    if number and not -MAX_EXPONENT <= number.adjusted() <= MAX_EXPONENT:
        # Arithmetic on 1e999999999 overflows the decimal context: refuse it here, not in the signal path.
        raise WireError(f"{what} is out of range, got {short(value)}")
    return number


def decimal(obj: Mapping[str, Any], key: str) -> Decimal:
    return decimal_value(obj[key], key)


def optional_decimal(obj: Mapping[str, Any], key: str) -> Decimal | None:
    value = obj.get(key)
    return None if value is None else decimal_value(value, key)


def integer(obj: Mapping[str, Any], key: str) -> int:
    value = obj[key]
    if type(value) is not int:  # bool is a subclass of int: excluded on purpose
        raise WireError(f"{key} must be an integer, got {short(value)}")
    return value


def text(obj: Mapping[str, Any], key: str) -> str:
    value = obj[key]
    if type(value) is not str:
        raise WireError(f"{key} must be a string, got {short(value)}")
    return value


def boolean(obj: Mapping[str, Any], key: str) -> bool:
    value = obj[key]
    if type(value) is not bool:
        raise WireError(f"{key} must be true or false, got {short(value)}")
    return value


def cloid(obj: Mapping[str, Any]) -> Cloid | None:
    """An optional cloid; absent or null is None, anything else must be a valid cloid."""
    value = obj.get("cloid")
    if value is None:
        return None
    try:
        return Cloid.parse(value)
    except CloidError:
        raise WireError(f"cloid is not 0x + 32 hex digits: {short(value)}") from None
