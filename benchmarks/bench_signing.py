"""Time hip3's `sign_l1_action` against the official SDK's on the same HIP-3 order actions.

Prints one JSON object: {"hip3_us", "sdk_us", "ratio", "n", "python"} where the times are the median
microseconds per signature and ratio = sdk_us / hip3_us. Exits 1 if any pair of signatures differs.

    .venv/bin/python benchmarks/bench_signing.py [--n 2000] [--seed 1]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import eth_account
from hyperliquid.utils import signing as sdk

from hip3.protocol.signing import SigningKey, sign_l1_action

# The public test key of the official SDK's signing tests; never a real account.
BENCH_KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
FIRST_NONCE = 1_700_000_000_000
WARM_UP = 200

Action = dict[str, Any]
Signer = Callable[[Action, int], dict[str, Any]]


def _wire(value: Decimal) -> str:
    return f"{value.normalize():f}"


def build_order_actions(n: int, seed: int) -> list[Action]:
    """Single IOC orders on HIP-3 assets with a cloid: what the taker sends on every signal."""
    rng = random.Random(seed)
    actions = []
    for _ in range(n):
        asset = 100_000 + rng.randint(1, 5) * 10_000 + rng.randint(0, 60)
        order = {
            "a": asset,
            "b": rng.random() < 0.5,
            "p": _wire(Decimal(rng.randint(10_000, 99_999)).scaleb(-rng.randint(0, 4))),
            "s": _wire(Decimal(rng.randint(1, 50_000)).scaleb(-rng.randint(0, 4))),
            "r": rng.random() < 0.2,
            "t": {"limit": {"tif": "Ioc"}},
            "c": "0x" + rng.randbytes(16).hex(),
        }
        actions.append({"type": "order", "orders": [order], "grouping": "na"})
    return actions


def time_each(sign: Signer, actions: Sequence[Action]) -> tuple[list[int], list[dict[str, Any]]]:
    """Per-call nanoseconds and the signatures, after a warm-up on the first actions."""
    for nonce, action in enumerate(actions[:WARM_UP], FIRST_NONCE):
        sign(action, nonce)
    gc.collect()
    durations, signatures = [], []
    clock = time.perf_counter_ns
    for nonce, action in enumerate(actions, FIRST_NONCE):
        start = clock()
        signature = sign(action, nonce)
        durations.append(clock() - start)
        signatures.append(signature)
    return durations, signatures


def same_signature(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    return (
        int(ours["r"], 16) == int(theirs["r"], 16)
        and int(ours["s"], 16) == int(theirs["s"], 16)
        and ours["v"] == theirs["v"]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="number of order actions (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the random actions (default 1)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be at least 1")

    actions = build_order_actions(args.n, args.seed)
    key = SigningKey.from_hex(BENCH_KEY)
    wallet = eth_account.Account.from_key(BENCH_KEY)

    def sign_hip3(action: Action, nonce: int) -> dict[str, Any]:
        return dict(sign_l1_action(key, action, nonce=nonce, is_mainnet=True))

    def sign_sdk(action: Action, nonce: int) -> dict[str, Any]:
        result: dict[str, Any] = sdk.sign_l1_action(wallet, action, None, nonce, None, True)
        return result

    hip3_ns, hip3_signatures = time_each(sign_hip3, actions)
    sdk_ns, sdk_signatures = time_each(sign_sdk, actions)
    mismatches = sum(not same_signature(a, b) for a, b in zip(hip3_signatures, sdk_signatures, strict=True))

    hip3_us = statistics.median(hip3_ns) / 1000
    sdk_us = statistics.median(sdk_ns) / 1000
    result = {
        "hip3_us": round(hip3_us, 2),
        "sdk_us": round(sdk_us, 2),
        "ratio": round(sdk_us / hip3_us, 2),
        "n": args.n,
        "python": platform.python_version(),
    }
    print(json.dumps(result))
    if mismatches:
        print(f"error: {mismatches} of {args.n} signatures differ from the SDK's", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
