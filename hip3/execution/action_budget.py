"""The address's budget of new-order actions: at most `per_minute` over any sliding 60 s on Trio's clock.

Hyperliquid counts every order of a batch against the address's request allowance (protocol reference §8),
so the bot spends its own, smaller budget first and refuses an entry instead of burning the exchange's.
Checking and consuming are one step (`try_consume`): the predecessor checked, then consumed, and two signals
could both pass the check (§6 item 4). A unit consumed at time t is available again at exactly t + 60 s.

Reduce-only exits and cancels are not charged here: an exit must never wait for entry budget.
"""

from __future__ import annotations

from collections import deque
from typing import Final

import trio

WINDOW_S: Final = 60.0


class ActionBudget:
    def __init__(self, per_minute: int) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be ≥ 1, got {per_minute}")
        self.per_minute = per_minute
        self._spent: deque[tuple[float, int]] = deque()  # (time consumed, units), oldest first
        self._spent_total = 0

    def try_consume(self, n: int = 1) -> bool:
        """Consume `n` units if they fit in the window now; False (nothing consumed) if they do not."""
        if n < 1:
            raise ValueError(f"n must be ≥ 1, got {n}")
        self._forget_expired()
        if self._spent_total + n > self.per_minute:
            return False
        self._spent.append((trio.current_time(), n))
        self._spent_total += n
        return True

    def available(self) -> int:
        self._forget_expired()
        return self.per_minute - self._spent_total

    def _forget_expired(self) -> None:
        now = trio.current_time()
        # Compare `spent + WINDOW_S <= now`, not `spent <= now - WINDOW_S`: a sleep until `spent + 60`
        # lands on exactly that float, so a unit is back at the very instant its minute ends.
        while self._spent and self._spent[0][0] + WINDOW_S <= now:
            _, units = self._spent.popleft()
            self._spent_total -= units
