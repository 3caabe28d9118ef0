"""`make bench` works end to end: every benchmark script runs (on tiny samples) and the document has the
headline keys the performance page quotes. Figures are never asserted here (benchmarks/, docs/performance.md);
what is asserted is that each measurement measured what it says: every tick-to-order event drew an order,
every signature equals the SDK's, the engine's ledger stayed consistent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADLINE = {
    "tick_to_order_us": {"p50", "p99", "max"},
    "sim_frame_to_order_us": {"p50", "p99"},
    "signing": {"hip3_us", "sdk_us", "ratio"},
}
RATES = ("feed_frames_per_s", "signal_evals_per_s", "engine_orders_per_s", "startup_to_ready_s")


def test_the_benchmark_document_has_every_headline_figure() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    for key, fields in HEADLINE.items():
        assert fields <= figures[key].keys(), key
        assert all(isinstance(figures[key][f], int | float) and figures[key][f] > 0 for f in fields), key
    for key in RATES:
        assert isinstance(figures[key], int | float) and figures[key] > 0, key
    details = figures["details"]
    tick = details["tick_to_order"]
    assert tick["tick_to_order_us"]["events"] == tick["tick_to_order_us"]["orders_measured"] == 20
    assert tick["tick_to_order_us"]["missed"] == 0 and tick["sim_frame_to_order_us"]["missed"] == 0
    assert tick["startup_markets"] == 42
    assert details["engine"]["ledger_consistent"] is True
    assert details["signal"]["markets"] == 50
    assert figures["quick"] is True and figures["machine"]["python"]


def test_the_scenario_figures_are_taken_from_the_market_process() -> None:
    """docs/simulator.md quotes benchmarks/bench_scenario.py: every dislocation it counts rose above the bar,
    and the same seed gives the same figures."""
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_scenario.py"), "--minutes", "2"]
    runs = [subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT) for _ in range(2)]
    first, second = (json.loads(run.stdout) for run in runs)
    assert first == second
    assert first["dislocations"] > 0 and first["markets"] == 12
    assert first["peak_bps_p10"] > first["above_bps"] and first["length_s_median"] > 0
