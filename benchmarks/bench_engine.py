"""Orders per second through the simulated exchange engine, in-process.

Two figures, both over N order actions (a mix of Ioc takers and Gtc orders resting away from the touch,
with maker quotes refreshed every 50 orders so the book never runs dry):
- engine_orders_per_s: `SimExchange.exchange()` with pre-signed bodies, i.e. parsing, canonical re-encoding,
  signature recovery, nonce check, matching and accounting. Signing happens before the timed loop.
- matching_orders_per_s: `TradingEngine.place_order()` only (book + ledger), bypassing authentication.

Prints one JSON object.    .venv/bin/python benchmarks/bench_engine.py [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hip3.protocol.actions import exchange_request
from hip3.protocol.signing import SigningKey, sign_l1_action
from hip3.sim.engine import SimExchange
from hip3.sim.scenario import AccountDef, DexDef, MarketDef, Scenario

BENCH_KEY = SigningKey.from_hex("0x0123456789012345678901234567890123456789012345678901234567890123")
START_MS = 1_767_225_600_000
TSLA_ASSET = 110000
QUOTE_REFRESH = 50


def build() -> tuple[SimExchange, list[int]]:
    clock = [START_MS]
    scenario = Scenario(
        dexes=(
            DexDef(
                name="",
                markets=(MarketDef(name="BTC", sz_decimals=5, max_leverage=40, start_price=Decimal(90000)),),
            ),
            DexDef(
                name="xyz",
                markets=(MarketDef(name="TSLA", sz_decimals=3, max_leverage=10, start_price=Decimal(430)),),
            ),
        ),
        accounts=(AccountDef(address=BENCH_KEY.address, usdc=Decimal(10**12)),),
    )
    return SimExchange(scenario, wall_ms=lambda: clock[0]), clock


def refresh_quotes(sim: SimExchange) -> None:
    bids = [(Decimal(430) - Decimal(i) / 10, Decimal(50)) for i in range(1, 11)]
    asks = [(Decimal(430) + Decimal(i) / 10, Decimal(50)) for i in range(1, 11)]
    sim.set_maker_quotes("xyz:TSLA", bids, asks)


def order_wire(i: int) -> dict[str, Any]:
    is_buy = i % 2 == 0
    if i % 4 < 2:  # Ioc taker through the touch
        px, tif = ("430.5" if is_buy else "429.5"), "Ioc"
    else:  # Gtc resting behind the maker's levels
        px, tif = ("425" if is_buy else "435"), "Gtc"
    return {"a": TSLA_ASSET, "b": is_buy, "p": px, "s": "0.05", "r": False, "t": {"limit": {"tif": tif}}}


def signed_bodies(n: int) -> list[dict[str, Any]]:
    bodies = []
    for i in range(n):
        action = {"type": "order", "orders": [order_wire(i)], "grouping": "na"}
        nonce = START_MS + 1 + i
        sig = sign_l1_action(BENCH_KEY, action, nonce=nonce, is_mainnet=False)
        bodies.append(exchange_request(action, dict(sig), nonce=nonce))
    return bodies


def timed(n: int, submit: Callable[[int], None], sim: SimExchange) -> float:
    refresh_quotes(sim)
    start = time.perf_counter()
    for i in range(n):
        if i % QUOTE_REFRESH == 0:
            refresh_quotes(sim)
        submit(i)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    n = parser.parse_args().n

    sim, _ = build()
    bodies = signed_bodies(n)

    def submit_signed(i: int) -> None:
        status, body = sim.exchange(bodies[i])
        assert status == 200 and body["status"] == "ok", body  # type: ignore[index]

    engine_s = timed(n, submit_signed, sim)

    sim2, _ = build()
    core = sim2.core
    user = core.user(BENCH_KEY.address)
    assert user is not None
    wires = [order_wire(i) for i in range(n)]

    def submit_core(i: int) -> None:
        core.place_order(user, wires[i], "0x" + "00" * 32)

    matching_s = timed(n, submit_core, sim2)
    audit = sim2.audit(BENCH_KEY.address)
    print(
        json.dumps(
            {
                "n": n,
                "engine_orders_per_s": round(n / engine_s),
                "matching_orders_per_s": round(n / matching_s),
                "fills": audit["fills"],
                "ledger_consistent": audit["ledger_consistent"],
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
