"""Prometheus metrics: the predecessor's hip3_* series (defined there, never served) plus latency histograms.

Each `Metrics` owns its own `CollectorRegistry` rather than the process-wide default one, so several can live
in one process (tests, a demo next to a bot). The wiring calls the small methods below as things happen; the
dashboard serves `render()` at `GET /metrics`.

Labels are bounded by construction: `coin` is one of the configured markets, `side` is buy or sell, `gate`
and `outcome` come from fixed sets in the bot. Never label with an order id or a free-text reason.
"""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

# Tick-to-order runs in tens of µs in process; the upper buckets catch a stalled event loop.
TICK_TO_ORDER_BUCKETS_US = (25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000)
# One POST to the exchange: a few ms co-located, hundreds across an ocean, seconds when something is wrong.
POST_RTT_BUCKETS_MS = (2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000)


class Metrics:
    """The hip3_* series in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._signals = Counter(
            "hip3_triggers", "Entry signals raised", ["coin", "side"], registry=self.registry
        )
        self._orders = Counter("hip3_orders", "Orders by outcome", ["outcome"], registry=self.registry)
        self._fills = Counter("hip3_fills", "Fills received", ["coin"], registry=self.registry)
        self._gate_blocks = Counter(
            "hip3_gate_blocked", "Signals blocked, by gate", ["gate"], registry=self.registry
        )
        self._reconnects = Counter(
            "hip3_ws_reconnect", "WebSocket reconnections", ["reason"], registry=self.registry
        )
        self._positions = Gauge("hip3_positions", "Open positions", registry=self.registry)
        self._hard_stop = Gauge(
            "hip3_hard_stop_latched", "1 while the hard stop is latched, else 0", registry=self.registry
        )
        self._realized_pnl = Gauge(
            "hip3_realized_pnl_usd", "Realised PnL since start, USD", registry=self.registry
        )
        self._tick_to_order = Histogram(
            "hip3_tick_to_order_us",
            "From the market-data tick to the order leaving, microseconds",
            buckets=TICK_TO_ORDER_BUCKETS_US,
            registry=self.registry,
        )
        self._post_rtt = Histogram(
            "hip3_post_rtt_ms",
            "Round-trip time of a POST to the exchange, milliseconds",
            buckets=POST_RTT_BUCKETS_MS,
            registry=self.registry,
        )

    def signal(self, coin: str, side: str) -> None:
        self._signals.labels(coin=coin, side=side).inc()

    def order(self, outcome: str) -> None:
        self._orders.labels(outcome=outcome).inc()

    def fill(self, coin: str) -> None:
        self._fills.labels(coin=coin).inc()

    def gate_block(self, gate: str, count: int = 1) -> None:
        self._gate_blocks.labels(gate=gate).inc(count)

    def reconnect(self, reason: str = "unspecified") -> None:
        self._reconnects.labels(reason=reason).inc()

    def hard_stop(self, latched: bool) -> None:
        self._hard_stop.set(1 if latched else 0)

    def tick_to_order_us(self, value: float) -> None:
        self._tick_to_order.observe(value)

    def post_rtt_ms(self, value: float) -> None:
        self._post_rtt.observe(value)

    def set_positions(self, n: int) -> None:
        self._positions.set(n)

    def set_realized_pnl(self, usd: float | Decimal) -> None:
        self._realized_pnl.set(float(usd))

    def render(self) -> bytes:
        """The Prometheus text exposition of every series in this registry."""
        return generate_latest(self.registry)
