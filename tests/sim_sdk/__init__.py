"""The loopback simulator driven by the official hyperliquid-python-sdk: test keys, and the harness's helpers.

The keys are the published test vectors of the protocol reference §2.1 (Python, TypeScript and Rust SDK
tests); they never hold real funds. Each funded account has one job so that tests stay independent of order.

Calm windows. The simulated makers re-quote xyz:TSLA only while walking to a new oracle, between
`quote_lag_ms` and `quote_lag_ms + catch_up_ms` after each oracle update (every `oracle_interval_ms`), and the
mark price moves only at the oracle update itself. A test that predicts a response from the book it has just
read (an Ioc's average price, an Alo's bbo text) or from the mark must act while neither can change:
`CalmBook` knows the oracle's phase (measured once per session, see conftest.py) and waits for such a window.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final, TypeVar

import pytest

# The Python SDK's own test key: the account most trading tests use.
TRADER_KEY: Final = "0x0123456789012345678901234567890123456789012345678901234567890123"
TRADER: Final = "0x14791697260e4c9a71f18484c9f997b308e59325"
# The TypeScript SDK's test key: used only by the user-state test, so its "before" state is a fresh account.
FRESH_KEY: Final = "0x822e9959e022b78423eb653a62ea0020cd283e71a2a8133a6ff2aeffaf373cff"
FRESH: Final = "0xe5ca49fb3bd9a581f0d1ef9cb5d7177da08bf901"
# The Rust SDK's test key: the master account of the approved-agent test.
MASTER_KEY: Final = "0xe908f86dbb4d55ac876378565aafeabc187f6690f046459397b17d9b9a19688e"
MASTER: Final = "0xcd49bbac6e85fdeb167eb7ca41a945d2b8758f6f"

FUNDED_USDC: Final = Decimal(100_000)
PERP_DEXS: Final = ["", "xyz"]  # what the SDK is told, so it loads the xyz names and HIP-3 asset ids
TSLA: Final = "xyz:TSLA"
CALM_ATTEMPTS: Final = 3

T = TypeVar("T")


class NonceClock:
    """Millisecond timestamps that never repeat: the SDK's `get_timestamp_ms`, made strictly increasing.

    The SDK takes every nonce from the wall clock, so two actions signed in the same millisecond collide
    (protocol reference §5). The harness keeps the SDK's clock but never hands out a value twice, as the
    reference recommends (a counter fast-forwarded to the current millisecond).
    """

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, int(time.time() * 1000))
            return self._last


class CalmBook:
    """When the xyz:TSLA book and mark cannot change: windows of the oracle cycle."""

    def __init__(self, oracle_epoch: float, interval_s: float, windows: list[tuple[float, float]]) -> None:
        self._epoch = oracle_epoch  # time.monotonic() of one oracle update
        self._interval = interval_s
        self._windows = windows  # (start, end), seconds after an oracle update

    def wait(self, budget_s: float) -> float:
        """Sleep until a calm window has `budget_s` left; returns the monotonic time at which it ends."""
        if all(end - start < budget_s for start, end in self._windows):
            raise ValueError(f"no calm window lasts {budget_s} s: {self._windows}")
        while True:
            now = time.monotonic()
            phase = (now - self._epoch) % self._interval
            for start, end in self._windows:
                if start <= phase <= end - budget_s:
                    return now + end - phase
            time.sleep(min((start - phase) % self._interval for start, _ in self._windows) + 0.001)

    def run(self, action: Callable[[], T], budget_s: float = 0.5) -> T:
        """`action()` inside a calm window, run again (up to CALM_ATTEMPTS times) if it overran the window.

        Only for actions that are safe to repeat: reads, rejected orders, small Ioc fills on the trader.
        """
        for _ in range(CALM_ATTEMPTS):
            window_end = self.wait(budget_s)
            result = action()
            if time.monotonic() <= window_end:
                return result
        pytest.fail(f"the action overran its calm window {CALM_ATTEMPTS} times (budget {budget_s} s)")


def first_message(messages: queue.Queue[Any], match: Callable[[Any], bool], timeout_s: float) -> Any:
    """The first message (queued by an SDK callback) that matches, within `timeout_s` real seconds."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = messages.get(timeout=left)
        except queue.Empty:
            break
        if match(message):
            return message
    pytest.fail(f"no matching WebSocket message within {timeout_s} s")
