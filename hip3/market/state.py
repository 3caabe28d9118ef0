"""What the bot knows about one market now: book top, oracle, mark, their times, and per-market averages.

One `MarketState` per market, changed only by the feed task (frames) and by the risk gates and detector of
that market (their averages), all on the Trio thread. Receive times are `trio.current_time()`; exchange times
are the frames' own millisecond stamps. Decimal for prices and sizes; floats only for the statistics.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from hip3.core.market import BPS, MarketSpec


@attrs.define(slots=True)
class MarketState:
    coin: str
    spec: MarketSpec
    # top of book (bbo frames)
    bid_px: Decimal | None = None
    bid_sz: Decimal | None = None
    ask_px: Decimal | None = None
    ask_sz: Decimal | None = None
    bbo_exchange_ms: int | None = None
    bbo_received_at: float | None = None
    # asset context (activeAssetCtx frames)
    oracle_px: Decimal | None = None
    mark_px: Decimal | None = None
    ctx_mid_px: Decimal | None = None
    open_interest: Decimal | None = None
    funding: Decimal | None = None
    ctx_received_at: float | None = None
    # oracle history: how it moved and when (for the detector's filters and "one signal per oracle update")
    oracle_changed_at: float | None = None
    oracle_updates: int = 0  # how many times the oracle price changed
    previous_oracle_px: Decimal | None = None
    # the highest exchange time seen on this market (time-regression gate)
    last_exchange_ms: int | None = None
    # per-market statistics (floats), each updated by its owner
    spread_ewma_bps: float | None = None  # risk gates: updated only after the earlier gates pass
    baseline_ewma_bps: float | None = None  # detector: the market's usual (oracle - mid) / oracle gap
    frames: int = 0

    @property
    def bbo_valid(self) -> bool:
        """Both sides present and not crossed."""
        return self.bid_px is not None and self.ask_px is not None and self.bid_px < self.ask_px

    @property
    def mid_px(self) -> Decimal | None:
        if self.bid_px is None or self.ask_px is None:
            return None
        return (self.bid_px + self.ask_px) / 2

    @property
    def spread_bps(self) -> float | None:
        mid = self.mid_px
        if mid is None or mid <= 0 or self.bid_px is None or self.ask_px is None:
            return None
        return float((self.ask_px - self.bid_px) / mid) * BPS
