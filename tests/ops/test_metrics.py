"""The hip3_* series: their names, labels and histogram buckets as a Prometheus scraper parses them."""

from __future__ import annotations

from decimal import Decimal

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from hip3.ops.metrics import Metrics


def scrape(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the text exposition, keyed by sample name and labels."""
    samples: list[Sample] = [
        sample
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    ]
    return {(s.name, frozenset(s.labels.items())): s.value for s in samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_a_fresh_registry_serves_the_unlabelled_series_at_zero() -> None:
    samples = scrape(Metrics())
    assert value(samples, "hip3_positions") == 0
    assert value(samples, "hip3_hard_stop_latched") == 0
    assert value(samples, "hip3_realized_pnl_usd") == 0
    assert value(samples, "hip3_tick_to_order_us_count") == 0
    assert value(samples, "hip3_post_rtt_ms_bucket", le="+Inf") == 0


def test_counters_carry_their_labels() -> None:
    metrics = Metrics()
    metrics.signal("xyz:TSLA", "buy")
    metrics.signal("xyz:TSLA", "buy")
    metrics.signal("xyz:NVDA", "sell")
    metrics.order("accepted")
    metrics.order("rejected")
    metrics.order("accepted")
    metrics.fill("xyz:TSLA")
    metrics.gate_block("spread")
    metrics.reconnect()
    metrics.reconnect("idle_timeout")
    samples = scrape(metrics)
    assert value(samples, "hip3_triggers_total", coin="xyz:TSLA", side="buy") == 2
    assert value(samples, "hip3_triggers_total", coin="xyz:NVDA", side="sell") == 1
    assert value(samples, "hip3_orders_total", outcome="accepted") == 2
    assert value(samples, "hip3_orders_total", outcome="rejected") == 1
    assert value(samples, "hip3_fills_total", coin="xyz:TSLA") == 1
    assert value(samples, "hip3_gate_blocked_total", gate="spread") == 1
    assert value(samples, "hip3_ws_reconnect_total", reason="unspecified") == 1
    assert value(samples, "hip3_ws_reconnect_total", reason="idle_timeout") == 1


def test_gauges_follow_the_latest_value() -> None:
    metrics = Metrics()
    metrics.set_positions(2)
    metrics.hard_stop(True)
    metrics.set_realized_pnl(Decimal("-12.5"))
    samples = scrape(metrics)
    assert value(samples, "hip3_positions") == 2
    assert value(samples, "hip3_hard_stop_latched") == 1
    assert value(samples, "hip3_realized_pnl_usd") == -12.5
    metrics.hard_stop(False)
    metrics.set_realized_pnl(3.25)
    samples = scrape(metrics)
    assert value(samples, "hip3_hard_stop_latched") == 0
    assert value(samples, "hip3_realized_pnl_usd") == 3.25


def test_latency_histograms_fill_their_buckets() -> None:
    metrics = Metrics()
    for us in (40, 90, 300, 200_000):
        metrics.tick_to_order_us(us)
    metrics.post_rtt_ms(7.5)
    metrics.post_rtt_ms(120)
    samples = scrape(metrics)
    assert value(samples, "hip3_tick_to_order_us_bucket", le="25.0") == 0
    assert value(samples, "hip3_tick_to_order_us_bucket", le="50.0") == 1
    assert value(samples, "hip3_tick_to_order_us_bucket", le="100.0") == 2
    assert value(samples, "hip3_tick_to_order_us_bucket", le="500.0") == 3
    assert value(samples, "hip3_tick_to_order_us_bucket", le="100000.0") == 3
    assert value(samples, "hip3_tick_to_order_us_bucket", le="+Inf") == 4
    assert value(samples, "hip3_tick_to_order_us_count") == 4
    assert value(samples, "hip3_tick_to_order_us_sum") == 40 + 90 + 300 + 200_000
    assert value(samples, "hip3_post_rtt_ms_bucket", le="5.0") == 0
    assert value(samples, "hip3_post_rtt_ms_bucket", le="10.0") == 1
    assert value(samples, "hip3_post_rtt_ms_bucket", le="250.0") == 2
    assert value(samples, "hip3_post_rtt_ms_sum") == 127.5


def test_each_metrics_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.fill("xyz:TSLA")
    assert value(scrape(first), "hip3_fills_total", coin="xyz:TSLA") == 1
    assert ("hip3_fills_total", frozenset({("coin", "xyz:TSLA")})) not in scrape(second)
