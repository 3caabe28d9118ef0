"""The per-IP REST budget: request weight spent over a sliding minute, and the weight of each request.

Hyperliquid allows an aggregated weight of 1200 a minute per IP for /info and /exchange together (protocol
reference §8). `WeightBudget` keeps what was spent in the last `window_s` seconds on Trio's clock and makes a
caller wait until its weight fits, so the bot slows itself down instead of collecting 429s. The weight
functions follow the documented table; the extra weight of list responses is charged once the response is in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any, Final

import trio

IP_WEIGHT_PER_MINUTE: Final = 1200
WINDOW_S: Final = 60.0

LIGHT_INFO_TYPES: Final = frozenset(
    {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState", "exchangeStatus"}
)
LIGHT_INFO_WEIGHT: Final = 2
USER_ROLE_WEIGHT: Final = 60
DEFAULT_INFO_WEIGHT: Final = 20

# Info types that cost one more unit per this many items returned.
ITEMS_PER_EXTRA_WEIGHT: Final[Mapping[str, int]] = {
    **dict.fromkeys(
        (
            "recentTrades",
            "historicalOrders",
            "userFills",
            "userFillsByTime",
            "fundingHistory",
            "userFunding",
            "nonUserFundingUpdates",
            "twapHistory",
            "userTwapSliceFills",
            "userTwapSliceFillsByTime",
            "delegatorHistory",
            "delegatorRewards",
            "validatorStats",
        ),
        20,
    ),
    "candleSnapshot": 60,
}
ORDERS_PER_EXTRA_EXCHANGE_WEIGHT: Final = 40


class WeightBudget:
    """Request weight spent over a sliding window (60 s) on `trio.current_time()`.

    `acquire` waits with `trio.sleep_until` until the weight fits; `charge` adds weight without waiting.
    Waiters are served first come, first served: a heavy request is not starved by a stream of light ones.
    """

    def __init__(self, per_minute: int = IP_WEIGHT_PER_MINUTE, window_s: float = WINDOW_S) -> None:
        if per_minute <= 0 or window_s <= 0:
            raise ValueError(f"per_minute and window_s must be positive, got {per_minute} and {window_s}")
        self.per_minute = per_minute
        self.window_s = window_s
        self._spent: deque[tuple[float, int]] = deque()  # (time spent, weight), oldest first
        self._used = 0  # the sum of the weights in `_spent`: not summed again on every request
        self._turn = trio.Lock()  # trio.Lock is fair, so waiters get their turn in arrival order

    async def acquire(self, weight: int) -> None:
        """Spend `weight`, first waiting until the last `window_s` seconds leave room for it."""
        if weight < 0 or weight > self.per_minute:
            raise ValueError(f"weight {weight} can never fit a budget of {self.per_minute} a window")
        async with self._turn:
            # A loop, not one sleep: a `charge` made while we slept can push the time further out.
            while True:
                room_at = self._time_when_fits(weight)
                if room_at is None:
                    break
                await trio.sleep_until(room_at)
            self._spend(weight)

    def used(self) -> int:
        """Weight spent in the current window."""
        self._forget_expired()
        return self._used

    def charge(self, weight: int) -> None:
        """Add weight without waiting: the extra weight a response turned out to cost."""
        if weight < 0:
            raise ValueError(f"cannot charge a negative weight ({weight})")
        if weight:
            self._spend(weight)

    def _spend(self, weight: int) -> None:
        self._spent.append((trio.current_time(), weight))
        self._used += weight

    def _time_when_fits(self, weight: int) -> float | None:
        """None if `weight` fits now, else the time at which enough of the window will have expired."""
        excess = self.used() + weight - self.per_minute
        if excess <= 0:
            return None
        for spent_at, spent in self._spent:
            excess -= spent
            if excess <= 0:
                return spent_at + self.window_s
        raise AssertionError("unreachable: weight <= per_minute, so expiring everything makes room")

    def _forget_expired(self) -> None:
        now = trio.current_time()
        while self._spent and self._spent[0][0] + self.window_s <= now:
            _, weight = self._spent.popleft()
            self._used -= weight


def info_weight(request: Mapping[str, Any]) -> int:
    """The documented weight of an /info request, before any extra weight for what it returns."""
    request_type = request.get("type")
    if request_type in LIGHT_INFO_TYPES:
        return LIGHT_INFO_WEIGHT
    if request_type == "userRole":
        return USER_ROLE_WEIGHT
    return DEFAULT_INFO_WEIGHT


def extra_info_weight(request_type: str, response: Any) -> int:
    """Extra weight charged for the items a list-returning /info request got back.

    The docs say "additional weight per 20 items returned" without saying how a partial step counts; we count
    whole steps (floor), as in the exchange formula: 45 fills cost 2 more, 19 cost nothing. A response that is
    not a list (an error object, say) has no items.
    """
    step = ITEMS_PER_EXTRA_WEIGHT.get(request_type)
    if step is None or not isinstance(response, list):
        return 0
    return len(response) // step


def exchange_weight(batch_length: int) -> int:
    """Weight of an /exchange request: 1 + floor(batch_length / 40); unbatched 1, 79 orders 2."""
    if batch_length < 0:
        raise ValueError(f"batch_length must not be negative, got {batch_length}")
    return 1 + batch_length // ORDERS_PER_EXTRA_EXCHANGE_WEIGHT
