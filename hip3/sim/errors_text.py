"""Every text the simulated exchange answers with, in one table.

Texts marked [real] are the exchange's own (protocol reference §4.5, §4.6, §5). The others are this
simulator's choice where the real text is unknown; each is listed under "differences from the real exchange"
in engine.py.
"""

from __future__ import annotations

from typing import Final

# HTTP 422 body: the real server's axum/serde rejection text [real]; a detail follows after ": ".
DESERIALIZE_FAILURE: Final = "Failed to deserialize the JSON body into the target type"

# Per-order errors [real] (§4.5)
TICK: Final = "Price must be divisible by tick size."
ZERO_SIZE: Final = "Order has zero size."
MIN_NOTIONAL: Final = "Order must have minimum value of $10."
REDUCE_ONLY: Final = "Reduce only order would increase position."
PERP_MARGIN: Final = "Insufficient margin to place order."
BAD_ALO_PX: Final = "Post only order would have immediately matched, bbo was {bid}@{ask}."
IOC_CANCEL: Final = "Order could not immediately match against any resting orders."
OI_CAP: Final = "Order would increase open interest while open interest is capped"
CANCEL_MISSING: Final = "Order was never placed, already canceled, or filled."

# Per-order errors chosen here (real text unknown)
LOT: Final = "Order has invalid size."
UNKNOWN_ASSET: Final = "Order has invalid asset."
HALTED: Final = "Trading is halted for this asset."

# Top-level errors [real]
UNKNOWN_SIGNER: Final = "User or API Wallet {address} does not exist."
NONCE_DUPLICATE: Final = "Invalid nonce: duplicate nonce {nonce}"
NONCE_TOO_LOW: Final = "Invalid nonce: nonce too low {nonce} < {bound}"
NONCE_TOO_HIGH: Final = "Invalid nonce: nonce too high {nonce} > {bound}"
SCHEDULE_CANCEL_TOO_EARLY: Final = "Scheduled cancel time too early, must be at least 5 seconds from now."
VAULT_NOT_REGISTERED: Final = "Vault not registered: {address}"

# Top-level errors chosen here
EXPIRED: Final = "Action already expired"  # quoted by a third party (§4.3)
UNRECOVERABLE_SIGNATURE: Final = "Unable to recover signer."  # quoted by a third party (§4.6)
SCHEDULE_CANCEL_CAP: Final = "Too many scheduled cancel triggers today, the limit is {cap} per day."
WRONG_CHAIN: Final = "Action signed for the wrong chain: expected {expected}."
USER_SIGNED_NONCE_MISMATCH: Final = "Action nonce does not match the request nonce."
USER_SIGNED_EXPIRES_AFTER: Final = "expiresAfter is not supported for user-signed actions."
AGENT_IS_USER: Final = "Cannot approve an existing user as an agent."
LEVERAGE_INVALID_ASSET: Final = "Invalid asset."
LEVERAGE_CROSS_NOT_ALLOWED: Final = "Cross margin is not allowed for this asset."
LEVERAGE_OUT_OF_RANGE: Final = "Invalid leverage value."
LEVERAGE_INSUFFICIENT_MARGIN: Final = "Insufficient margin to change leverage."

# Order statuses (§4.7) for each per-order error above
REJECTED_STATUS: Final[dict[str, str]] = {
    TICK: "tickRejected",
    MIN_NOTIONAL: "minTradeNtlRejected",
    REDUCE_ONLY: "reduceOnlyRejected",
    PERP_MARGIN: "perpMarginRejected",
    IOC_CANCEL: "iocCancelRejected",
    OI_CAP: "positionIncreaseAtOpenInterestCapRejected",
}
BAD_ALO_STATUS: Final = "badAloPxRejected"
GENERIC_REJECTED_STATUS: Final = "rejected"


def rejected_status(text: str) -> str:
    """The order status an order rejected with this text gets in orderStatus and orderUpdates."""
    if text.startswith("Post only order would have immediately matched"):
        return BAD_ALO_STATUS
    return REJECTED_STATUS.get(text, GENERIC_REJECTED_STATUS)


TRIGGER_UNSUPPORTED: Final = "Trigger orders are not supported by the simulator."
