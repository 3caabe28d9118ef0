"""The dashboard's view of a running bot: a JSON-ready snapshot, recent activity, and the hard-stop controls.

It implements `hip3.ops.dashboard.DashboardSource`. It keeps the last signals and fills it was told about
(listeners the wiring connects) and reads everything else from the components when a snapshot is asked for.
Prices and sizes go out as exact strings; figures for display only (edge, PnL) as floats.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

import trio

from hip3.core.clock import WallClock
from hip3.core.market import BPS
from hip3.execution.latency import OrderLatency
from hip3.market.state import MarketState
from hip3.net.ws import Status
from hip3.position.model import PendingOrder, Position
from hip3.position.tracker import AppliedFill
from hip3.protocol.messages import OrderState
from hip3.risk.hard_stop import MANUAL, HardStop, Latch
from hip3.risk.monitor import RiskFigures
from hip3.strategy.signal import Signal

RECENT_KEPT = 20


class TradingParts(Protocol):
    """What the view reads from the trading desk (absent in observation mode)."""

    @property
    def hard_stop(self) -> HardStop: ...

    @property
    def positions(self) -> Mapping[str, Position]: ...
    def pending_orders(self) -> list[PendingOrder]: ...
    def is_exiting(self, coin: str) -> bool: ...
    def figures(self) -> RiskFigures: ...


class BotView:
    def __init__(
        self,
        *,
        mode: str,
        states: Mapping[str, MarketState],
        ws_status: Callable[[], Status],
        blocking_gates: Callable[[str], tuple[str, ...]],
        latency: OrderLatency | None,
        wall_ms: WallClock,
        trading: TradingParts | None = None,
        on_reset: Callable[[Latch, str], None] | None = None,
    ) -> None:
        self._mode = mode
        self._states = states
        self._ws_status = ws_status
        self._blocking_gates = blocking_gates
        self._latency = latency
        self._wall_ms = wall_ms
        self._trading = trading
        self._on_reset = on_reset
        self._started_at = trio.current_time()
        self._signals: deque[dict[str, Any]] = deque(maxlen=RECENT_KEPT)
        self._fills: deque[dict[str, Any]] = deque(maxlen=RECENT_KEPT)
        self.counts: Counter[str] = Counter({"signals": 0, "orders": 0, "fills": 0})
        self.order_outcomes: Counter[str] = Counter()  # ended orders by final state

    # -- listeners ---------------------------------------------------------------------------------------

    def on_signal(self, signal: Signal) -> None:
        self.counts["signals"] += 1
        state = self._states.get(signal.coin)
        size = signal.suggested_size
        if state is not None:
            size = round(size, state.spec.sz_decimals)
        self._signals.appendleft(
            {
                "coin": signal.coin,
                "at_ms": self._wall_ms(),
                "side": signal.side.label,
                "raw_edge_bps": round(signal.raw_edge_bps, 2),
                "net_edge_bps": round(signal.net_edge_bps, 2),
                "threshold_bps": round(signal.threshold_bps, 2),
                "best_px": str(signal.best_px),
                "size": str(size),
            }
        )

    def on_order(self, _order: PendingOrder) -> None:
        self.counts["orders"] += 1

    def on_order_ended(self, _order: PendingOrder, state: OrderState, _reason: str) -> None:
        self.order_outcomes[state.value] += 1

    def on_fill(self, fill: AppliedFill) -> None:
        self.counts["fills"] += 1
        self._fills.appendleft(
            {
                "coin": fill.coin,
                "at_ms": self._wall_ms(),
                "side": fill.side.label,
                "size": str(fill.size),
                "px": str(fill.px),
                "realized_usd": str(fill.effect.realized_pnl),
                "source": fill.source,
            }
        )

    # -- DashboardSource -----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        status = self._ws_status()
        figures = None if self._trading is None else self._trading.figures()  # one reading for the snapshot
        return {
            "markets": [self._market(state) for _, state in sorted(self._states.items())],
            "positions": self._positions(),
            "orders": self._orders(),
            "signals": list(self._signals),
            "fills": list(self._fills),
            "risk": self._risk(figures),
            "connection": {"state": status.state.value, "epoch": status.epoch},
            "latency": self._latency_figures(),
            "summary": self._summary(figures),
        }

    def latch_hard_stop(self, reason: str) -> str | None:
        if self._trading is None:
            return "there is no hard stop in observation mode"
        if not self._trading.hard_stop.latch(MANUAL, f"dashboard: {reason}"):
            return "the hard stop is already latched"
        return None

    def reset_hard_stop(self, operator: str) -> str | None:
        if self._trading is None:
            return "there is no hard stop in observation mode"
        cleared = self._trading.hard_stop.reset(operator=operator)
        if cleared is None:
            return "no hard stop is latched"
        if self._on_reset is not None:
            self._on_reset(cleared, operator)
        return None

    # -- parts ---------------------------------------------------------------------------------------------

    def _market(self, state: MarketState) -> dict[str, Any]:
        gates = self._blocking_gates(state.coin)
        return {
            "coin": state.coin,
            "bid": _text(state.bid_px),
            "ask": _text(state.ask_px),
            "oracle": _text(state.oracle_px),
            "edge_bps": _gap_bps(state),
            "gate": ", ".join(gates) if gates else "open",
        }

    def _positions(self) -> list[dict[str, Any]]:
        if self._trading is None:
            return []
        now_ms = self._wall_ms()
        rows = []
        for coin, position in sorted(self._trading.positions.items()):
            mark = self._states[coin].mark_px if coin in self._states else None
            rows.append(
                {
                    "coin": coin,
                    "size": str(position.size),
                    "entry_px": str(position.entry_px),
                    "pnl_usd": None if mark is None else float((mark - position.entry_px) * position.size),
                    "held_s": (now_ms - position.entry_time_ms) / 1000,
                    "exiting": self._trading.is_exiting(coin),
                }
            )
        return rows

    def _orders(self) -> list[dict[str, Any]]:
        if self._trading is None:
            return []
        return [
            {
                "coin": order.coin,
                "side": order.side.label,
                "size": str(order.size),
                "limit_px": str(order.limit_px),
                "phase": order.phase.value,
                "cloid": order.cloid.value,
            }
            for order in self._trading.pending_orders()
        ]

    def _risk(self, figures: RiskFigures | None) -> dict[str, Any]:
        if self._trading is None or figures is None:
            return {"hard_stop": None, "counters": {"mode": "observation (no orders)"}}
        latch = self._trading.hard_stop.latched
        return {
            "hard_stop": None
            if latch is None
            else {"trigger": latch.trigger, "reason": latch.reason, "latched_at_ms": latch.latched_at_ms},
            "counters": {
                "losing_streak": figures.losing_streak,
                "realized_pnl_window_usd": str(figures.realized_pnl_window_usd),
                "alarming_rejects_window": figures.alarming_rejects_window,
                "benign_rejects_total": figures.benign_rejects_total,
                "signer_errors_window": figures.signer_errors_window,
                "flatten_failures_window": figures.flatten_failures_window,
                "clock_skew": figures.clock_skew or "ok",
            },
        }

    def _latency_figures(self) -> dict[str, Any]:
        if self._latency is None:
            return {}
        return {
            "tick_to_order_us": self._latency.tick_to_order_us.percentiles(),
            "post_rtt_ms": self._latency.post_rtt_ms.percentiles(),
        }

    def _summary(self, figures: RiskFigures | None) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "mode": self._mode,
            "uptime_s": round(trio.current_time() - self._started_at, 1),
            **self.counts,
        }
        if figures is not None:
            rate = figures.win_rate
            summary |= {
                "round_trips": figures.round_trips,
                "win_rate": None if rate is None else round(rate, 3),
                "realized_pnl_usd": str(figures.realized_pnl_total_usd),
                "fees_usd": str(figures.fees_usd),
            }
        return summary


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _gap_bps(state: MarketState) -> float | None:
    """How far the book's mid is from the oracle, in bps of the oracle (positive: the oracle is above)."""
    mid, oracle = state.mid_px, state.oracle_px
    if mid is None or oracle is None or oracle == 0:
        return None
    return round(float((oracle - mid) / oracle) * BPS, 2)
