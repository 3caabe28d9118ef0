"""Detector evaluations per second over 50 markets, in-process, on the real clock.

A stream of frames is generated before timing (seeded): mostly book updates (a random walk of bid/ask and
sizes around each market's oracle), one oracle change in 20 frames, and now and then an ask left below a
risen oracle (a dislocation), so every path of the detector runs: quote checks, baseline updates, the
threshold, the filters, sizing and dedup. The timed loop applies each frame to its market's `MarketState`
as the feed would and evaluates that market only, with the default settings (filters and baseline on).

Prints one JSON object.    .venv/bin/python benchmarks/bench_signal.py [--n 200000]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from decimal import Decimal

from hip3.core.market import MarketKey, MarketSpec
from hip3.market.state import MarketState
from hip3.strategy.detector import Detector, DetectorSettings

MARKETS = 50
N = 200_000
SEED = 7
FRAME_INTERVAL_S = 0.002  # 500 frames a second across all markets
ORACLE_FRAME_EVERY = 20
DISLOCATION_EVERY = 200

# (market index, bid, ask, bid size, ask size, new oracle or None)
Frame = tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal | None]


def make_states(markets: int = MARKETS) -> list[MarketState]:
    states = []
    for i in range(markets):
        coin = f"xyz:M{i:02d}"
        spec = MarketSpec(name=coin, key=MarketKey("xyz", 1, i), sz_decimals=2, max_leverage=10)
        oracle = Decimal(10 + 20 * i)
        states.append(
            MarketState(coin=coin, spec=spec, oracle_px=oracle, oracle_updates=1, oracle_changed_at=0.0)
        )
    return states


def make_frames(states: list[MarketState], n: int, seed: int = SEED) -> list[Frame]:
    rng = random.Random(seed)
    oracles = [state.oracle_px or Decimal(1) for state in states]
    frames: list[Frame] = []
    for k in range(n):
        i = rng.randrange(len(states))
        new_oracle = None
        if k % ORACLE_FRAME_EVERY == 0:
            new_oracle = oracles[i] = _quantized(oracles[i] * Decimal(1 + rng.uniform(-4e-4, 6e-4)))
        half_spread_bps = rng.uniform(2, 15)
        offset_bps = rng.gauss(0, 3) - (60 if k % DISLOCATION_EVERY == 1 else 0)
        mid = oracles[i] * Decimal(1 + offset_bps / 1e4)
        bid = _quantized(mid * Decimal(1 - half_spread_bps / 1e4))
        ask = _quantized(mid * Decimal(1 + half_spread_bps / 1e4))
        sizes = (Decimal(rng.randint(1, 400)), Decimal(rng.randint(1, 400)))
        frames.append((i, bid, ask, *sizes, new_oracle))
    return frames


def _quantized(price: Decimal) -> Decimal:
    return price.quantize(Decimal("0.001"))


def measure_signal_evals(n: int = N, markets: int = MARKETS) -> dict[str, float | int]:
    """Evaluations per second and microseconds per evaluation over `n` frames on `markets` markets."""
    states = make_states(markets)
    frames = make_frames(states, n)
    detector = Detector(DetectorSettings())
    started = time.perf_counter()
    for k, (i, bid, ask, bid_sz, ask_sz, new_oracle) in enumerate(frames):
        state = states[i]
        now = k * FRAME_INTERVAL_S
        if new_oracle is not None and new_oracle != state.oracle_px:
            state.previous_oracle_px, state.oracle_px = state.oracle_px, new_oracle
            state.oracle_updates += 1
            state.oracle_changed_at = now
        state.bid_px, state.ask_px, state.bid_sz, state.ask_sz = bid, ask, bid_sz, ask_sz
        detector.evaluate(state, now)
    elapsed = time.perf_counter() - started
    return {
        "signal_evals_per_s": round(n / elapsed),
        "markets": markets,
        "us_per_eval": round(elapsed / n * 1e6, 3),
        "evaluations": n,
        "signals": detector.stats["signals"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=N, help="frames to evaluate")
    args = parser.parse_args()
    print(json.dumps(measure_signal_evals(args.n)))


if __name__ == "__main__":
    main()
