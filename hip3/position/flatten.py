"""The flatten guard: at most one reduce-only order per market queued or in flight, across every exit path.

The time stop, mark regression, the hard stop's flatten-all and shutdown all close positions through one
guard (predecessor J-004: a re-fired exit sent a second reduce-only that the exchange rejected; its fixes went
queue dedup → per-monitor sets → one shared guard). Whoever wins `try_begin` owns the market's exit order and
must `end` it when that order reaches a terminal state; `Exits` does this when the order leaves the tracker's
pending table, which happens on every terminal state (filled, rejected, cancelled, reconciled).
"""

from __future__ import annotations

from collections import Counter


class FlattenGuard:
    def __init__(self) -> None:
        self._held: set[str] = set()
        self.stats: Counter[str] = Counter()

    def try_begin(self, coin: str) -> bool:
        """Take the market's guard; False when an exit order for it is already queued or in flight."""
        if coin in self._held:
            self.stats["refused_in_progress"] += 1
            return False
        self._held.add(coin)
        self.stats["begun"] += 1
        return True

    def end(self, coin: str) -> None:
        """Release the market's guard; releasing a free market is a no-op."""
        if coin in self._held:
            self._held.discard(coin)
            self.stats["ended"] += 1

    def is_flattening(self, coin: str) -> bool:
        return coin in self._held

    @property
    def markets(self) -> frozenset[str]:
        return frozenset(self._held)
