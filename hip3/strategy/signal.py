"""A detected dislocation: what the detector saw and what it suggests taking, as a recordable value."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

from hip3.core.order import Side


@attrs.frozen(slots=True)
class Signal:
    """One signal on one market and side, at one oracle update.

    `net_edge_bps` is how far the edge cleared the binding condition (see `hip3.strategy.detector`);
    `suggested_size` is not lot-rounded (the execution layer floors it and applies caps and minimums).
    """

    id: str
    coin: str
    side: Side
    raw_edge_bps: float
    net_edge_bps: float
    threshold_bps: float
    oracle_px: Decimal
    best_px: Decimal  # the taken side: the ask for a buy, the bid for a sell
    best_sz: Decimal
    suggested_size: Decimal
    baseline_bps: float | None  # the structural oracle-mid gap applied; None when the correction was not
    filters: Mapping[str, bool | float]  # each filter's verdict and the figures it looked at
    detected_at: float  # Trio time
    oracle_update: int  # the market's oracle_updates count when detected

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict: Decimals as strings, the side as "buy" or "sell"."""
        return {
            "id": self.id,
            "coin": self.coin,
            "side": self.side.label,
            "raw_edge_bps": self.raw_edge_bps,
            "net_edge_bps": self.net_edge_bps,
            "threshold_bps": self.threshold_bps,
            "oracle_px": str(self.oracle_px),
            "best_px": str(self.best_px),
            "best_sz": str(self.best_sz),
            "suggested_size": str(self.suggested_size),
            "baseline_bps": self.baseline_bps,
            "filters": dict(self.filters),
            "detected_at": self.detected_at,
            "oracle_update": self.oracle_update,
        }
