"""The dislocations a shipped scenario makes: how many a minute, how deep, how long (docs/simulator.md).

The market process alone (no exchange, no bot), stepped event by event over `--minutes` simulated minutes.
A market's edge is how far its book lags the oracle: (oracle − best ask) / oracle for a stale ask, or
(best bid − oracle) / oracle for a stale bid, in bps; books only change at events, so evaluating after each
event is exact. A dislocation is a run of events with the edge above `--above-bps`: its peak is the largest
edge in the run, its length the time from the event that opened it to the one that closed it.

Prints one JSON object.    .venv/bin/python benchmarks/bench_scenario.py [--scenario default] [--minutes 10]
"""

from __future__ import annotations

import argparse
import json
import statistics

from hip3.sim.market_process import MarketProcess, dislocation_bps
from hip3.sim.scenario_file import shipped_scenario


def measure(scenario_name: str, minutes: float, above_bps: float) -> dict[str, object]:
    process = MarketProcess(shipped_scenario(scenario_name))
    process.start()
    open_since: dict[str, tuple[int, float]] = {}  # coin -> (opened at ms, peak so far)
    peaks: list[float] = []
    lengths_s: list[float] = []
    end_ms = int(minutes * 60_000)
    while (now_ms := process.next_event_ms()) <= end_ms:
        process.advance(now_ms)
        for coin in process.coins:
            edge = float(dislocation_bps(process.oracle(coin), process.quotes(coin)))  # a statistic
            opened = open_since.get(coin)
            if edge > above_bps:
                open_since[coin] = (now_ms, edge) if opened is None else (opened[0], max(opened[1], edge))
            elif opened is not None:
                del open_since[coin]
                peaks.append(opened[1])
                lengths_s.append((now_ms - opened[0]) / 1000)
    deciles = statistics.quantiles(peaks, n=10) if len(peaks) >= 2 else [float("nan")] * 9
    return {
        "scenario": scenario_name,
        "markets": len(process.coins),
        "minutes": minutes,
        "above_bps": above_bps,
        "dislocations": len(peaks),
        "dislocations_per_minute": round(len(peaks) / minutes, 2),
        "peak_bps_median": round(statistics.median(peaks), 1) if peaks else None,
        "peak_bps_p10": round(deciles[0], 1),
        "peak_bps_p90": round(deciles[-1], 1),
        "length_s_median": round(statistics.median(lengths_s), 2) if lengths_s else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--above-bps", type=float, default=15.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.scenario, args.minutes, args.above_bps)))


if __name__ == "__main__":
    main()
