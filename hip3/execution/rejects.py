"""What an exchange rejection text means: which documented error it is, and whether it is benign.

Benign rejections are the normal cost of taking stale quotes and must not feed the HardStop (predecessor
"U benign rejections"): an Ioc that found nothing to match, a reduce-only order after the position already
closed, the $10 minimum, a zero size, and a cancel of an order that is already gone. Everything else (margin,
tick, oracle distance, open-interest caps, nonce and signer errors, texts we have never seen) is alarming.

Texts are matched on the documented wording (protocol reference §4.5), ignoring the ` asset=<id>` suffix the
live exchange appends and surrounding whitespace.
"""

from __future__ import annotations

import enum
import re
from typing import Final

_ASSET_SUFFIX = re.compile(r"\s+asset=\d+\s*$")


class RejectKind(enum.Enum):
    IOC_NO_MATCH = "ioc_no_match"
    REDUCE_ONLY_WOULD_INCREASE = "reduce_only_would_increase"
    MIN_NOTIONAL = "min_notional"
    ZERO_SIZE = "zero_size"
    CANCEL_MISSING_ORDER = "cancel_missing_order"
    TICK = "tick"
    MARGIN = "margin"
    POST_ONLY_WOULD_MATCH = "post_only_would_match"
    OPEN_INTEREST = "open_interest"
    ORACLE = "oracle"
    MAX_POSITION = "max_position"
    NO_LIQUIDITY = "no_liquidity"
    NONCE = "nonce"
    SIGNER = "signer"
    OTHER = "other"


# Exact documented texts (after the suffix is removed).
_EXACT: Final[dict[str, RejectKind]] = {
    "Order could not immediately match against any resting orders.": RejectKind.IOC_NO_MATCH,
    "Reduce only order would increase position.": RejectKind.REDUCE_ONLY_WOULD_INCREASE,
    "Order must have minimum value of $10.": RejectKind.MIN_NOTIONAL,
    "Order has zero size.": RejectKind.ZERO_SIZE,
    "Order was never placed, already canceled, or filled.": RejectKind.CANCEL_MISSING_ORDER,
    "Price must be divisible by tick size.": RejectKind.TICK,
    "Insufficient margin to place order.": RejectKind.MARGIN,
    "No liquidity available for market order.": RejectKind.NO_LIQUIDITY,
    "Order price too far from oracle": RejectKind.ORACLE,
    "Order would cause position to exceed margin tier limit at current leverage": RejectKind.MAX_POSITION,
}

# Texts with a variable part: matched by their documented beginning.
_PREFIXES: Final[tuple[tuple[str, RejectKind], ...]] = (
    ("Post only order would have immediately matched", RejectKind.POST_ONLY_WOULD_MATCH),
    ("Order would increase open interest", RejectKind.OPEN_INTEREST),
    ("Order rejected due to price more aggressive than oracle", RejectKind.OPEN_INTEREST),
    ("Order price cannot be more than", RejectKind.ORACLE),
    ("Invalid nonce", RejectKind.NONCE),
    ("L1 error: User or API Wallet", RejectKind.SIGNER),
    ("User or API Wallet", RejectKind.SIGNER),
    ("Must deposit before performing actions", RejectKind.SIGNER),
    ("Unable to recover signer", RejectKind.SIGNER),
    ("Vault not registered", RejectKind.SIGNER),
)

BENIGN_ORDER_REJECTS: Final = frozenset(
    {
        RejectKind.IOC_NO_MATCH,
        RejectKind.REDUCE_ONLY_WOULD_INCREASE,
        RejectKind.MIN_NOTIONAL,
        RejectKind.ZERO_SIZE,
    }
)
BENIGN_CANCEL_REJECTS: Final = frozenset({RejectKind.CANCEL_MISSING_ORDER})


def strip_asset_suffix(text: str) -> str:
    return _ASSET_SUFFIX.sub("", text).strip()


def classify_reject(text: str) -> RejectKind:
    core = strip_asset_suffix(text)
    kind = _EXACT.get(core)
    if kind is not None:
        return kind
    for prefix, prefixed_kind in _PREFIXES:
        if core.startswith(prefix):
            return prefixed_kind
    return RejectKind.OTHER


def is_benign_order_reject(text: str) -> bool:
    return classify_reject(text) in BENIGN_ORDER_REJECTS


def is_benign_cancel_reject(text: str) -> bool:
    return classify_reject(text) in BENIGN_CANCEL_REJECTS
